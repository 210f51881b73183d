"""A small sandbox served in the test's own event loop, and a reader for its SSE streams.

For tests that need what the shared sandbox subprocess cannot give them: a world of their own
to change freely, fast heartbeats, tiny listener queues, a busy simulated market. The server
is the real application (``Sandbox.application()``) on a free loopback port. alpaca-py's
clients block, so tests call them through ``asyncio.to_thread`` and the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from alpaca.broker import BrokerClient
from django.conf import settings

from marketdata.sandbox.events import EventLog
from marketdata.sandbox.server import Sandbox, SandboxConfig


@dataclass
class Served:
    """A running in-process sandbox and how to reach it."""

    sandbox: Sandbox
    origin: str

    def broker(self) -> BrokerClient:
        return BrokerClient(
            settings.SANDBOX_API_KEY,
            settings.SANDBOX_SECRET_KEY,
            sandbox=True,
            url_override=self.origin,
        )

    def http(self, **options: object) -> aiohttp.ClientSession:
        """A session with the Broker API's Basic credentials, paths relative to the origin."""
        credentials = aiohttp.encode_basic_auth(
            settings.SANDBOX_API_KEY, settings.SANDBOX_SECRET_KEY
        )
        return aiohttp.ClientSession(self.origin, headers={"Authorization": credentials}, **options)


@asynccontextmanager
async def served(events: EventLog | None = None, **config: object) -> AsyncIterator[Served]:
    """Serve a 12-account, 60-symbol sandbox; customers stay idle unless ``config`` says so."""
    options = {"accounts": 12, "symbols": 60, "orders_per_minute": 0.0} | config
    sandbox = Sandbox(
        SandboxConfig(
            api_key=settings.SANDBOX_API_KEY, secret_key=settings.SANDBOX_SECRET_KEY, **options
        )
    )
    if events is not None:
        sandbox.events = events
    runner = web.AppRunner(
        sandbox.application(), access_log=None, handle_signals=False, shutdown_timeout=0.5
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield Served(sandbox, f"http://{host}:{port}")
    finally:
        await sandbox.events.close_all()
        await runner.cleanup()


@dataclass(frozen=True)
class Frame:
    """One SSE frame: a data event (with its ``id:`` line, if any) or a comment."""

    data: dict | None = None
    id: str | None = None
    comment: str | None = None


class EventStream:
    """Parses ``text/event-stream`` from a streaming aiohttp response; every wait is bounded."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self._fields: dict[str, str] = {}

    async def next(self, timeout: float = 5.0) -> Frame | None:
        """The next frame, or None once the server has ended the stream."""
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), timeout)
            if not raw:
                return None
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":"):
                return Frame(comment=line[1:].strip())
            if line:
                name, _, value = line.partition(":")
                self._fields[name] = value.removeprefix(" ")
                continue
            if self._fields:
                frame = Frame(data=json.loads(self._fields["data"]), id=self._fields.get("id"))
                self._fields = {}
                return frame

    async def data_until(self, done: Callable[[dict], bool], timeout: float = 5.0) -> list[dict]:
        """Data events up to and including the first for which ``done`` is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        received: list[dict] = []
        while True:
            frame = await self.next(deadline - loop.time())
            assert frame is not None, f"stream ended after {len(received)} events"
            if frame.data is not None:
                received.append(frame.data)
                if done(frame.data):
                    return received

    async def to_end(self, timeout: float = 5.0) -> list[Frame]:
        """Every frame until the server ends the stream."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        frames: list[Frame] = []
        while (frame := await self.next(deadline - loop.time())) is not None:
            frames.append(frame)
        return frames
