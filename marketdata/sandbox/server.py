"""The sandbox server: one aiohttp application on loopback that answers as Alpaca does.

It serves the Broker REST API (:mod:`.broker_api`), the Broker event streams (:mod:`.events`),
historical market data (:mod:`.data_api`), the real-time market-data websockets
(:mod:`.stream`) and its own control endpoints (:mod:`.control`), all over one generated,
consistent world (:mod:`.generation`, :mod:`.world`, :mod:`.market`). Background tasks move
prices, fill orders, settle transfers and roll the trading day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from . import broker_api, control, data_api
from .assets import build_assets
from .auth import Credentials, unauthorized
from .calendar import CALENDARS
from .events import EventLog
from .exchange import Exchange
from .faults import FaultConfig, Faults, Handler
from .generation import build_world
from .market import Market
from .stream import StreamHub

logger = logging.getLogger(__name__)

#: Path prefixes of Alpaca's REST APIs, which need credentials (websockets authenticate in-band).
API_PREFIXES = ("/v1/", "/v2/", "/v1beta1/", "/v1beta3/", "/v2beta1/")
#: Crypto market data is public at Alpaca: no keys needed.
PUBLIC_PREFIXES = ("/v1beta3/crypto/",)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown paths and methods answer in Alpaca's JSON error shape, which the SDK parses."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return web.json_response(
            {"code": error.status * 100000, "message": error.reason.lower()}, status=error.status
        )


@dataclass
class SandboxConfig:
    """Everything ``manage.py sandbox`` can set; the defaults make a small, lively demo world."""

    host: str = "127.0.0.1"
    port: int = 5999
    accounts: int = 50
    symbols: int = 150
    quotes_per_second: float = 50.0
    seed: int = 42
    calendar: str = "always_open"
    api_key: str = "sandbox-key"
    secret_key: str = "sandbox-secret"
    iex_symbol_limit: int = 30
    stream_connection_limit: int = 1
    orders_per_minute: float = 6.0
    faults: FaultConfig = field(default_factory=FaultConfig)


class Sandbox:
    """The world, the market and the services that expose them."""

    def __init__(self, config: SandboxConfig, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        self.config = config
        self.credentials = Credentials(config.api_key, config.secret_key)
        self.market = Market(
            build_assets(config.symbols, config.seed),
            config.seed,
            CALENDARS[config.calendar](),
            now,
        )
        self.world = build_world(self.market, config.accounts, config.seed, now)
        self.faults = Faults(config.faults, config.seed)
        self.events = EventLog()
        self.exchange = Exchange(self)
        self.streams = StreamHub(self)
        #: Alpaca REST requests received, by route (``/v2/stocks/bars``,
        #: ``/v1/trading/accounts/{account_id}/positions``...), faulted ones included: tests
        #: tell from it how many requests a client sent.
        self.requests: Counter[str] = Counter()

    @web.middleware
    async def count_requests(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if resource is not None and request.path.startswith(API_PREFIXES):
            self.requests[resource.canonical] += 1
        return await handler(request)

    @web.middleware
    async def require_credentials(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if (
            request.path.startswith(API_PREFIXES)
            and not request.path.startswith(PUBLIC_PREFIXES)
            and request.headers.get("Upgrade", "").lower() != "websocket"
            and not self.credentials.request_ok(request)
        ):
            return unauthorized()
        return await handler(request)

    def application(self) -> web.Application:
        app = web.Application(
            middlewares=[
                json_errors,
                self.count_requests,
                self.require_credentials,
                self.faults.middleware,
            ]
        )
        app.add_routes(control.routes(self))
        app.add_routes(broker_api.routes(self))
        app.add_routes(data_api.routes(self))
        app.add_routes(self.events.routes(self))
        app.add_routes(self.streams.routes())
        # Shutdown runs before aiohttp cancels open handlers: end long-lived streams there, so
        # clients see a clean end instead of a reset.
        app.on_shutdown.append(self._end_streams)
        app.cleanup_ctx.append(self._background)
        return app

    async def _end_streams(self, app: web.Application) -> None:
        await self.streams.close_all()
        await self.events.close_all()

    async def _background(self, app: web.Application) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(self.streams.run(), name="sandbox-quotes"),
            asyncio.create_task(self.exchange.run(), name="sandbox-exchange"),
            asyncio.create_task(self._roll_sessions(), name="sandbox-sessions"),
        ]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _roll_sessions(self) -> None:
        """Start a new trading day when the calendar opens one: closes, last_equity, day bars."""
        while True:
            await asyncio.sleep(1.0)
            now = datetime.now(UTC)
            rolled = self.market.roll_sessions(now)
            if rolled:
                self.world.roll_day()
                logger.info("sandbox rolled to a new session for %d symbols", len(rolled))


async def serve(config: SandboxConfig, ready: asyncio.Event | None = None) -> None:
    """Build the world, listen on ``config.host:config.port`` and serve until cancelled."""
    started = datetime.now(UTC)
    sandbox = Sandbox(config, started)
    runner = web.AppRunner(sandbox.application(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, shutdown_timeout=1.0)
    await site.start()
    logger.info(
        "sandbox ready on http://%s:%d: %d accounts, %d symbols, %.0f quotes/s, seed %d (%.1fs)",
        config.host,
        config.port,
        len(sandbox.world.accounts),
        len(sandbox.market.assets),
        config.quotes_per_second,
        config.seed,
        (datetime.now(UTC) - started).total_seconds(),
    )
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
