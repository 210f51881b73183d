"""The whole application on real processes, for the fault suite: a Redis of its own (so it
can be killed), daphne, the calculator and the quote and event consumers as the Procfile runs
them, over the test run's sandbox; and an investor who uses it as the page does: a token, REST
reads, a portfolio socket opened with a ticket that answers the server's pings."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import requests

from clera.devstack.command_process import CommandProcess
from clera.devstack.daphne_process import DaphneProcess
from clera.devstack.embedded_redis import EmbeddedRedis
from clera.devstack.harness import django_env
from clera.devstack.local_server import ROOT
from clera.devstack.ports import free_port
from realtime import protocol
from tests.stack import services

#: The long-lived processes, by Procfile name, with their manage.py arguments.
COMMANDS = {
    "calculator": ("run_calculator",),
    "quotes": ("consume_quotes",),
    "events": ("consume_events",),
}

# The child's database: one investor linked to the accounts, with an API token.
SETUP = """
import json, django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from portfolio.models import BrokerageAccount
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user(username="investor")
for account_id in {account_ids!r}:
    BrokerageAccount.objects.create(user=user, account_id=account_id)
print(json.dumps({{"token": Token.objects.create(user=user).key}}))
"""


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


class Live:
    """The running application; :meth:`start` / :meth:`close` bracket a test module."""

    def __init__(self, folder: Path, account_ids: list[str], **settings: str) -> None:
        self.folder = folder
        self.account_ids = account_ids
        self.redis = EmbeddedRedis(port=0)
        self._running = ExitStack()
        self._settings = settings
        self.env: dict[str, str] = {}
        self.daphne: DaphneProcess | None = None
        self.processes: dict[str, CommandProcess] = {}
        self.token = ""

    def start(self) -> Live:
        self._running.enter_context(self.redis)
        self.env = django_env(
            self.folder / "db.sqlite3",
            **{**services().settings_env(), "REDIS_URL": self.redis.url, "LOG_LEVEL": "INFO"},
            **self._settings,
        )
        setup = subprocess.run(
            [sys.executable, "-c", SETUP.format(account_ids=self.account_ids)],
            env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert setup.returncode == 0, setup.stderr[-2000:]
        self.token = json.loads(setup.stdout.strip().splitlines()[-1])["token"]
        for name in COMMANDS:
            self.start_process(name)
        self.start_daphne()
        return self

    def start_daphne(self) -> DaphneProcess:
        """Start (or start again, on a new port) the web process."""
        self.daphne = DaphneProcess("127.0.0.1", free_port(), self.env, output=self._log("daphne"))
        self._running.callback(self.daphne.stop)
        return self.daphne.start()

    def _log(self, name: str):
        return self._running.enter_context((self.folder / f"{name}.log").open("a"))

    def start_process(self, name: str, *extra: str) -> CommandProcess:
        """Start (or start again) the Procfile process ``name``."""
        process = CommandProcess(*COMMANDS[name], *extra, env=self.env, output=self._log(name))
        self.processes[name] = process.start()
        self._running.callback(process.stop)
        return process

    def close(self) -> None:
        self._running.close()

    @property
    def origin(self) -> str:
        assert self.daphne is not None
        return self.daphne.origin

    def investor(self, account_id: str | None = None) -> Investor:
        """The investor, watching ``account_id`` (default: the first linked)."""
        return Investor(self.origin, self.token, account_id or self.account_ids[0])


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Investor:
    """What the page does, over HTTP and one socket."""

    origin: str
    token: str
    account_id: str
    sockets: list[LiveSocket] = field(default_factory=list)

    def _call(self, method: str, path: str) -> Answer:
        answer = requests.request(
            method,
            self.origin + path,
            headers={"Authorization": f"Token {self.token}"},
            timeout=15,
        )
        try:
            body = answer.json()
        except ValueError:
            body = answer.text
        return Answer(answer.status_code, dict(answer.headers), body)

    async def get(self, path: str) -> Answer:
        return await asyncio.to_thread(self._call, "GET", path)

    async def ticket(self) -> Answer:
        return await asyncio.to_thread(self._call, "POST", "/api/realtime/ticket")

    async def watch(self, last_seq: int | None = None) -> LiveSocket:
        """The account's portfolio socket, opened with a fresh ticket."""
        ticket = await self.ticket()
        assert ticket.status == 201, ticket
        path = f"/ws/portfolio/{self.account_id}?ticket={ticket.body['ticket']}"
        if last_seq is not None:
            path += f"&last_seq={last_seq}"
        socket = await LiveSocket.open(self.origin.replace("http", "ws", 1) + path)
        self.sockets.append(socket)
        return socket

    async def close(self) -> None:
        await asyncio.gather(*(socket.close() for socket in self.sockets))


class LiveSocket:
    """A client socket that answers pings and keeps every other message, with its arrival;
    updates are applied to the state before them, as the page applies them."""

    def __init__(self, session: aiohttp.ClientSession, socket: aiohttp.ClientWebSocketResponse):
        self._session = session
        self._socket = socket
        self._inbox: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()
        #: The account's whole state as the updates so far make it (an update's ``data`` is
        #: this whole state; what was sent is its ``sent``).
        self.state: dict = {}
        self.close_code: int | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> LiveSocket:
        session = aiohttp.ClientSession()
        try:
            socket = await session.ws_connect(url, heartbeat=None)
        except BaseException:
            await session.close()
            raise
        return cls(session, socket)

    async def _read(self) -> None:
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if data.get("type") == "ping":
                await self._socket.send_json({"type": "pong"})
                continue
            if data.get("type") == "snapshot":
                self.state = data["data"]
            elif data.get("type") == "update":  # whole or partial: kept as the page keeps it
                self.state = protocol.apply(self.state, data["data"])
                data = {**data, "sent": data["data"], "data": self.state}
            self._inbox.put_nowait((time.monotonic(), data))
        self.close_code = self._socket.close_code
        self._inbox.put_nowait((time.monotonic(), {"type": "closed", "code": self.close_code}))

    async def next(self, timeout: float = 15.0) -> tuple[float, dict]:
        """The next message and when it arrived (``{"type": "closed"}`` once closed)."""
        return await asyncio.wait_for(self._inbox.get(), timeout)

    async def next_of(self, *kinds: str, timeout: float = 15.0) -> tuple[float, dict]:
        """The next message of one of ``kinds``, skipping others (system notices, events)."""
        deadline = time.monotonic() + timeout
        while True:
            at, message = await self.next(max(0.0, deadline - time.monotonic()))
            if message["type"] in kinds:
                return at, message
            assert message["type"] != "closed", message

    async def close(self) -> None:
        await self._socket.close()
        await self._session.close()
        self._reader.cancel()


def consistent(data: dict) -> None:
    """A valuation the investor can trust on its face, recomputed from its own figures: the
    total is cash plus positions, today's return the total less yesterday's equity, and the
    holdings add up to the positions. Each figure is rounded (half-even) to the cent on its
    own, so sums may be a rounding step off: half a cent per rounded term."""
    total, cash = Decimal(data["total_value"]), Decimal(data["cash"])
    positions = Decimal(data["positions_value"])
    assert abs(total - (cash + positions)) <= Decimal("0.01"), data
    today = Decimal(data["today_return"])
    assert abs(today - (total - Decimal(data["last_equity"]))) <= Decimal("0.01"), data
    holdings = sum((Decimal(h["market_value"]) for h in data["holdings"]), Decimal(0))
    assert abs(holdings - positions) <= Decimal("0.005") * (len(data["holdings"]) + 1), data


def held(data: dict) -> dict[str, Decimal]:
    """Quantity by symbol, as a valuation says."""
    return {h["symbol"]: Decimal(h["qty"]) for h in data["holdings"]}


def streamed_since(data: dict, moment: datetime) -> bool:
    """Whether some holding is priced by a trade or quote streamed after ``moment``."""
    return any(
        h["price_source"] in ("trade", "quote") and datetime.fromisoformat(h["price_at"]) > moment
        for h in data["holdings"]
    )
