"""Open sockets are re-authorized on every server heartbeat: signed out (the session gone, the
token deleted), the login deactivated, or the account unlinked in the admin — the socket is
closed within one interval, 4401 or 4403, and sockets still entitled stay open."""

from __future__ import annotations

import asyncio
import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolio.models import BrokerageAccount
from realtime import auth
from realtime.tickets import Credential

from .conftest import make_owner

pytestmark = pytest.mark.django_db(transaction=True)

#: The server heartbeat in these tests, seconds.
INTERVAL = 0.5
#: What a close may take beyond the interval: the beat's one round of queries, on a busy box.
SLACK = 0.5


@pytest.fixture(autouse=True)
def _fast_heartbeat(settings) -> None:
    settings.WS_HEARTBEAT_INTERVAL = INTERVAL
    settings.WS_HEARTBEAT_TIMEOUT = 60


def browser(user: Any) -> Client:
    """A browser signed in as the user (a session of its own)."""
    client = Client()
    client.force_login(user)
    return client


def cookie(client: Client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


async def closed_within_one_interval(socket) -> tuple[int, dict]:
    """The close code and the error before it, asserting they came within one heartbeat."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + INTERVAL + SLACK
    said = []
    while (left := deadline - loop.time()) > 0:
        output = await socket.receive_output(left)  # TimeoutError: still open after the interval
        if output["type"] == "websocket.close":
            return output["code"], said[-1]
        said.append(json.loads(output["text"]))
    raise AssertionError(f"still open {INTERVAL + SLACK}s later; it sent {said}")


async def still_open(socket, beats: int = 2) -> None:
    """The socket lives through ``beats`` more heartbeats (each brings a ping) and answers."""
    for _ in range(beats):
        while (await socket.next(timeout=INTERVAL + SLACK))["type"] != "ping":
            pass
    await socket.send({"type": "heartbeat"})
    assert (await socket.next_of("heartbeat"))["message"] == "pong"


async def test_signing_out_closes_that_sessions_sockets_4401(connect, owner):
    leaving, staying = await sync_to_async(lambda: (browser(owner.user), browser(owner.user)))()
    portfolio = await connect(f"/ws/portfolio/{owner.account_id}", cookie=cookie(leaving))
    stream = await connect("/ws/stream", cookie=cookie(leaving))
    other_tab = await connect(f"/ws/portfolio/{owner.account_id}", cookie=cookie(staying))
    await portfolio.next_of("snapshot")
    await other_tab.next_of("snapshot")

    signed_out = await sync_to_async(leaving.post)(reverse("logout"))
    assert signed_out.status_code in (200, 302)

    for socket in (portfolio, stream):
        code, said = await closed_within_one_interval(socket)
        assert code == 4401
        assert said["code"] == "not_authenticated" and "signed out" in said["message"]
    await still_open(other_tab)  # the same user's other session is still signed in


async def test_a_deactivated_user_is_closed_4401_however_they_connected(connect, owner, ticket):
    issued = await sync_to_async(ticket)(owner.user)
    by_session = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    by_ticket = await connect(f"/ws/stream?ticket={issued}", origin=None)
    await by_session.next_of("snapshot")

    owner.user.is_active = False
    await sync_to_async(owner.user.save)(update_fields=["is_active"])

    for socket in (by_session, by_ticket):
        code, said = await closed_within_one_interval(socket)
        assert code == 4401 and said["code"] == "not_authenticated"


async def test_unlinking_the_account_in_the_admin_closes_its_sockets_4403(
    connect, owner, admin_client
):
    portfolio = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    stream = await connect("/ws/stream", cookie=owner.cookie)
    await portfolio.next_of("snapshot")
    link = await BrokerageAccount.objects.aget(account_id=owner.account_id)

    deleted = await sync_to_async(admin_client.post)(
        reverse("admin:portfolio_brokerageaccount_delete", args=[link.pk]), {"post": "yes"}
    )
    assert deleted.status_code == 302

    code, said = await closed_within_one_interval(portfolio)
    assert code == 4403
    assert said["code"] == "forbidden" and "no longer linked" in said["message"]
    await still_open(stream)  # prices need a login, not an account


async def test_an_account_moved_to_another_user_is_closed_4403(
    connect, owner, django_user_model, ticket
):
    issued = await sync_to_async(ticket)(owner.user, owner.account_id)
    socket = await connect(f"/ws/portfolio/{owner.account_id}?ticket={issued}", origin=None)
    await socket.next_of("snapshot")
    someone = await sync_to_async(make_owner)(django_user_model)

    await BrokerageAccount.objects.filter(account_id=owner.account_id).aupdate(user=someone.user)

    assert (await closed_within_one_interval(socket))[0] == 4403


def _api_ticket(client: APIClient) -> str:
    answer = client.post("/api/realtime/ticket", {}, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()["ticket"]


async def test_a_ticket_socket_ends_with_the_login_that_asked_for_the_ticket(connect, owner):
    """A ticket's socket has no session of its own: it lives as long as the session or the API
    token the ticket was asked for with."""
    key = (await Token.objects.aget_or_create(user=owner.user))[0].key
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    by_session = APIClient()
    await sync_to_async(by_session.force_login)(owner.user)
    token_socket = await connect(
        f"/ws/stream?ticket={await sync_to_async(_api_ticket)(by_token)}", origin=None
    )
    session_socket = await connect(
        f"/ws/portfolio/{owner.account_id}?ticket={await sync_to_async(_api_ticket)(by_session)}",
        origin=None,
    )
    await session_socket.next_of("snapshot")

    signed_out = await sync_to_async(by_session.post)(reverse("logout"))
    assert signed_out.status_code in (200, 302)
    assert (await closed_within_one_interval(session_socket))[0] == 4401
    await still_open(token_socket, beats=1)

    revoked = await sync_to_async(by_token.delete)("/api/auth/token")
    assert revoked.status_code == 204
    assert (await closed_within_one_interval(token_socket))[0] == 4401


def test_one_round_of_queries_rechecks_every_socket_of_a_process(
    django_user_model, shape_account, django_assert_max_num_queries
):
    """The heartbeat's check is batched: a handful of queries for all of a process's sockets,
    not one per socket."""
    owners = [make_owner(django_user_model, str(uuid.uuid4())) for _ in range(20)]
    sessions = [browser(owner.user) for owner in owners]
    admitted = [
        SimpleNamespace(
            user_id=owner.user.pk,
            account_id=owner.account_id,
            credential=Credential("session", cookie(client)),
        )
        for owner, client in zip(owners, sessions, strict=True)
        for _ in range(3)  # three tabs each
    ]
    sessions[0].logout()
    BrokerageAccount.objects.filter(account_id=owners[1].account_id).delete()

    with django_assert_max_num_queries(3):
        verdicts = auth.revocations(admitted)

    codes = [None if verdict is None else verdict.code for verdict in verdicts]
    assert codes == [4401] * 3 + [4403] * 3 + [None] * 54


def test_sessions_outside_the_database_are_rechecked_too(owner, settings, redis_client):
    """With sessions in the cache (Redis here), a signed-out session is gone there as well."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    leaving, staying = browser(owner.user), browser(owner.user)
    sockets = [
        SimpleNamespace(
            user_id=owner.user.pk, account_id=None, credential=Credential("session", cookie(c))
        )
        for c in (leaving, staying)
    ]
    leaving.logout()

    assert [v and v.code for v in auth.revocations(sockets)] == [4401, None]
