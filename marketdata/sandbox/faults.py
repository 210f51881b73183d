"""Fault knobs: make the sandbox misbehave the way Alpaca sometimes does, on purpose.

A fraction of REST requests can be answered 429 (with Retry-After), 500, or only after a
delay; the market-data streams can be dropped or go silent. A shape knob changes an answer's
form, not its content: ``history_milliseconds`` is the fraction of portfolio histories whose
timestamps are epoch milliseconds instead of seconds (a form other brokers' and data feeds'
epochs take, which a reader must not mistake for the year 57,000). Tests and benchmarks turn
the knobs through ``/_sandbox/faults`` and the stream controls in :mod:`.control`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: The knobs that are fractions of requests.
FRACTIONS = ("rate_limited", "server_error", "slow", "history_milliseconds")


@dataclass
class FaultConfig:
    """Fractions in [0, 1] of REST requests that fail in each way; 0 everywhere is healthy."""

    rate_limited: float = 0.0
    server_error: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 3.0
    retry_after: int = 1
    history_milliseconds: float = 0.0

    def update(self, values: dict) -> None:
        """Apply a partial update, validating every value; raises ValueError naming the bad one."""
        known = {f.name: f.type for f in fields(self)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown fault knob {name!r}; known: {sorted(known)}")
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative number")
            if name in FRACTIONS and value > 1:
                raise ValueError(f"{name} is a fraction between 0 and 1")
        for name, value in values.items():
            setattr(self, name, int(value) if name == "retry_after" else float(value))

    def as_dict(self) -> dict:
        return asdict(self)


class Faults:
    """The live fault state shared by the REST middleware and the streams."""

    def __init__(self, config: FaultConfig | None = None, seed: int = 0) -> None:
        self.config = config or FaultConfig()
        self._rng = random.Random(f"{seed}:faults")
        self.silent_until = 0.0  # monotonic time until which streams send nothing

    def silence(self, seconds: float) -> None:
        self.silent_until = time.monotonic() + seconds

    @property
    def silent(self) -> bool:
        return time.monotonic() < self.silent_until

    def chance(self, knob: str) -> bool:
        """Whether this answer takes the shape a fraction knob asks for (drawn per answer)."""
        share = getattr(self.config, knob)
        return share > 0 and self._rng.random() < share

    def draw(self) -> str | None:
        """Which fault, if any, this request suffers."""
        roll = self._rng.random()
        for kind in ("rate_limited", "server_error", "slow"):
            share = getattr(self.config, kind)
            if roll < share:
                return kind
            roll -= share
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Apply the REST knobs to Alpaca's own paths (never to control paths or websockets)."""
        if (
            request.path.startswith("/_sandbox")
            or request.headers.get("Upgrade", "").lower() == "websocket"
        ):
            return await handler(request)
        fault = self.draw()
        if fault == "rate_limited":
            return web.json_response(
                {"code": 42910000, "message": "rate limit exceeded"},
                status=429,
                headers={"Retry-After": str(self.config.retry_after)},
            )
        if fault == "server_error":
            return web.json_response(
                {"code": 50010000, "message": "internal server error"}, status=500
            )
        if fault == "slow":
            await asyncio.sleep(self.config.slow_seconds)
        return await handler(request)
