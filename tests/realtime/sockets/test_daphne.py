"""The real server: daphne in a child process, real TCP, real handshakes — Origin and cookie
handling, and SIGTERM closing every socket with 1001 after what was pending."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis
from django.conf import settings

from clera.devstack.daphne_process import DaphneProcess
from clera.devstack.local_server import ROOT
from clera.devstack.ports import free_port
from realtime import limits, tickets

# A database of the child's own (the test database lives in this process), with one user
# linked to an account and signed in; prints what the test needs.
SETUP = """
import json, django
django.setup()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from portfolio.models import BrokerageAccount
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user(username="sockets")
BrokerageAccount.objects.create(user=user, account_id="{account_id}")
client = Client()
client.force_login(user)
cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
print(json.dumps({{"user_id": user.pk, "cookie": cookie}}))
"""


@pytest.fixture(scope="module")
def account_id(sandbox_accounts: list[dict]) -> str:
    return next(a["id"] for a in sandbox_accounts if a["shape"] == "diversified")


@pytest.fixture(scope="module")
def server(tmp_path_factory, account_id: str) -> Iterator[tuple[DaphneProcess, dict]]:
    folder: Path = tmp_path_factory.mktemp("daphne")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}", "LOG_LEVEL": "INFO"}
    setup = subprocess.run(
        [sys.executable, "-c", SETUP.format(account_id=account_id)],
        env={**env, "DJANGO_SETTINGS_MODULE": "clera.settings"},
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    signed_in = json.loads(setup.stdout.strip().splitlines()[-1])
    with (folder / "daphne.log").open("w") as log:
        daphne = DaphneProcess("127.0.0.1", free_port(), env, output=log)
        with daphne:
            yield daphne, signed_in


async def _open(daphne, path: str, **headers: str):
    session = aiohttp.ClientSession()
    try:
        socket = await session.ws_connect(f"ws://127.0.0.1:{daphne.port}{path}", headers=headers)
    except BaseException:
        await session.close()
        raise
    return session, socket


async def _messages_until_close(socket) -> tuple[int, list[dict]]:
    """The close code, and the messages before it (each ending with the close's reason)."""
    said = []
    while True:
        message = await socket.receive(timeout=30)
        if message.type == aiohttp.WSMsgType.TEXT:
            said.append(json.loads(message.data))
        elif message.type == aiohttp.WSMsgType.CLOSE:
            said.append({"reason": message.extra})
            await socket.close()
            return socket.close_code, said
        else:
            return socket.close_code, said


async def test_origin_and_cookie_over_real_handshakes(server, account_id):
    daphne, signed_in = server
    path = f"/ws/portfolio/{account_id}"
    cookie = f"sessionid={signed_in['cookie']}"

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await _open(daphne, path, Origin="http://evil.example", Cookie=cookie)
    assert refused.value.status == 403

    session, browser = await _open(daphne, path, Origin=daphne.origin, Cookie=cookie)
    async with session:
        snapshot = await browser.receive_json(timeout=15)
        assert snapshot["type"] == "snapshot" and snapshot["data"]["account_id"] == account_id
        await browser.close()

    session, cookie_only = await _open(daphne, path, Cookie=cookie)  # no Origin: not a browser
    async with session:
        code, said = await _messages_until_close(cookie_only)
        assert code == 4401 and said[-2]["code"] == "not_authenticated"

    ticket = tickets.issue(signed_in["user_id"], account_id)
    session, program = await _open(daphne, f"{path}?ticket={ticket}")
    async with session:
        assert (await program.receive_json(timeout=15))["type"] == "snapshot"
        await program.close()


async def test_protocol_close_codes_and_reasons_reach_the_client(server):
    """Daphne's own close path refuses 1008 and 1013 and drops reasons (realtime.serving)."""
    daphne, signed_in = server
    headers = {"Origin": daphne.origin, "Cookie": f"sessionid={signed_in['cookie']}"}
    session, socket = await _open(daphne, "/ws/stream", **headers)
    async with session:
        for _ in range(5):
            await socket.send_str("not json")
        code, said = await _messages_until_close(socket)
        assert code == 1008
        assert said[-2]["code"] == "policy_violation"
        assert said[-1]["reason"] == "policy_violation"


async def test_sigterm_closes_every_socket_with_1001(server, account_id):
    daphne, signed_in = server
    headers = {"Origin": daphne.origin, "Cookie": f"sessionid={signed_in['cookie']}"}
    portfolio_session, portfolio = await _open(daphne, f"/ws/portfolio/{account_id}", **headers)
    stream_session, stream = await _open(daphne, "/ws/stream", **headers)
    async with portfolio_session, stream_session:
        assert (await portfolio.receive_json(timeout=15))["type"] == "snapshot"
        await stream.send_json({"type": "heartbeat"})
        assert (await stream.receive_json(timeout=15))["message"] == "pong"

        leases = redis.Redis.from_url(settings.REDIS_URL)
        held = leases.zcard(limits.user_key(signed_in["user_id"]))
        daphne.terminate()

        for socket in (portfolio, stream):
            code, said = await _messages_until_close(socket)
            assert code == 1001
            assert said[-2] == {**said[-2], "type": "system", "code": "going_away"}
            assert said[-1]["reason"] == "going_away"
    assert daphne.wait(timeout=30) == 0
    # Its leases were given back: the users may reconnect to another process at once.
    assert leases.zcard(limits.user_key(signed_in["user_id"])) == held - 2
