"""Connection limits (1013 with a reason) and the ticket endpoint."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from realtime import limits, stats

pytestmark = pytest.mark.django_db(transaction=True)


async def admitted(socket) -> bool:
    await socket.send({"type": "heartbeat"})
    output = await socket.receive_output(10)
    return output["type"] == "websocket.send" and '"pong"' in output["text"]


async def test_one_connection_over_the_per_user_limit_is_closed_1013(connect, owner, settings):
    settings.WS_MAX_CONNECTIONS_PER_USER = 2
    first = await connect("/ws/stream", cookie=owner.cookie)
    second = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    assert await admitted(first)
    assert (await second.next_of("snapshot"))["type"] == "snapshot"
    hits = stats.current().pending["limit:user"]

    third = await connect("/ws/stream", cookie=owner.cookie)
    code, said = await third.closed()
    assert code == 1013
    assert said[-1]["code"] == "connection_limit"
    assert "2 live connections" in said[-1]["message"]
    assert stats.current().pending["limit:user"] == hits + 1

    await first.disconnect()
    fourth = await connect("/ws/stream", cookie=owner.cookie)
    assert await admitted(fourth)


async def test_the_per_process_and_overall_limits(connect, owner, stranger, settings):
    settings.WS_MAX_CONNECTIONS_PER_PROCESS = 1
    mine = await connect("/ws/stream", cookie=owner.cookie)
    assert await admitted(mine)
    theirs = await connect("/ws/stream", cookie=stranger.cookie)
    code, said = await theirs.closed()
    assert code == 1013 and "server is at its connection limit" in said[-1]["message"]

    settings.WS_MAX_CONNECTIONS_PER_PROCESS = 100
    settings.WS_MAX_CONNECTIONS_TOTAL = 2
    assert await admitted(await connect("/ws/stream", cookie=stranger.cookie))
    assert await admitted(await connect("/ws/stream", cookie=stranger.cookie))
    over = await connect("/ws/stream", cookie=owner.cookie)
    code, said = await over.closed()
    assert code == 1013 and "service is at its connection limit" in said[-1]["message"]


async def test_a_crashed_process_leases_expire(connect, owner, settings, redis_client):
    settings.WS_MAX_CONNECTIONS_PER_USER = 1
    leases = limits.user_key(owner.user.pk)
    # A socket of a process that died without closing, while its lease still runs...
    redis_client.zadd(leases, {"ghost": time.time() + 60})
    assert (await (await connect("/ws/stream", cookie=owner.cookie)).closed())[0] == 1013
    # ...and once it has run out.
    redis_client.zadd(leases, {"ghost": time.time() - 1})
    assert await admitted(await connect("/ws/stream", cookie=owner.cookie))
    assert redis_client.zrange(leases, 0, -1) != [b"ghost"]


def _api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0]}")
    return client


def test_the_ticket_endpoint_issues_short_lived_tickets(owner, stranger, redis_client):
    answer = _api(owner.user).post("/api/realtime/ticket", {}, format="json")
    assert answer.status_code == 201
    body = answer.json()
    assert body["expires_in"] == 30 and len(body["ticket"]) >= 40
    [key] = redis_client.keys("clera:ws:ticket:*")
    assert 0 < redis_client.ttl(key) <= 30
    assert body["ticket"].encode() not in key  # only its hash is stored

    mine = _api(owner.user).post(
        "/api/realtime/ticket", {"account_id": owner.account_id}, format="json"
    )
    assert mine.status_code == 201

    theirs = _api(owner.user).post(
        "/api/realtime/ticket", {"account_id": stranger.account_id}, format="json"
    )
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "account_not_found"

    bad = _api(owner.user).post("/api/realtime/ticket", {"account_id": "nope"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_parameter"

    anonymous = _api().post("/api/realtime/ticket", {}, format="json")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"


def test_no_tickets_while_realtime_is_switched_off(owner, settings):
    settings.ENABLE_REALTIME_PORTFOLIO = False
    answer = _api(owner.user).post("/api/realtime/ticket", format="json")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "realtime_disabled"


async def test_a_ticket_opens_a_socket_without_origin_or_cookie(connect, owner):
    body = await sync_to_async(lambda: _api(owner.user).post("/api/realtime/ticket").json())()
    socket = await connect(f"/ws/stream?ticket={body['ticket']}", origin=None)
    assert await admitted(socket)
