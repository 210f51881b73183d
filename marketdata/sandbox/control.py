"""The sandbox's own endpoints (not Alpaca's): readiness, the demo accounts, fault knobs, stats
(CPU, streams, events, the exchange, requests received by route).

They live under ``/_sandbox/`` and need no credentials: the sandbox listens on loopback and
holds nothing but generated data.
"""

from __future__ import annotations

import json
import resource
import time
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .server import Sandbox


def _bad_request(message: str) -> web.Response:
    return web.json_response({"code": 40010000, "message": message}, status=400)


def routes(sandbox: Sandbox) -> list[web.RouteDef]:
    started = time.monotonic()

    async def health(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "accounts": len(sandbox.world.accounts),
                "symbols": len(sandbox.market.assets),
                "seed": sandbox.config.seed,
            }
        )

    async def accounts(request: web.Request) -> web.Response:
        """Every account id with its shape, so demo users can be linked to the right books."""
        return web.json_response(
            {
                "accounts": [
                    {
                        "id": str(account.id),
                        "shape": account.shape,
                        "account_number": account.account_number,
                        "owner": account.owner,
                    }
                    for account in sandbox.world.accounts.values()
                ]
            }
        )

    async def faults(request: web.Request) -> web.Response:
        if request.method == "PUT":
            try:
                values = await request.json()
                if not isinstance(values, dict):
                    raise ValueError("send a JSON object of knob: value")
                sandbox.faults.config.update(values)
            except (ValueError, json.JSONDecodeError) as error:
                return _bad_request(str(error))
        return web.json_response(sandbox.faults.config.as_dict())

    async def drop_streams(request: web.Request) -> web.Response:
        dropped = await sandbox.streams.drop_all()
        return web.json_response({"dropped": dropped})

    async def silence_streams(request: web.Request) -> web.Response:
        try:
            seconds = float((await request.json()).get("seconds", 0))
        except (ValueError, AttributeError, json.JSONDecodeError):
            return _bad_request('send {"seconds": N}')
        if seconds < 0:
            return _bad_request("seconds must be >= 0")
        sandbox.faults.silence(seconds)
        return web.json_response({"silent_for": seconds})

    async def stats(request: web.Request) -> web.Response:
        """CPU the sandbox has used, so benchmarks can show it is not what they measure; the
        Alpaca REST requests it received, by route."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return web.json_response(
            {
                "uptime_seconds": round(time.monotonic() - started, 3),
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
                "max_rss_kb": usage.ru_maxrss,
                "streams": sandbox.streams.stats(),
                "events": sandbox.events.stats(),
                "exchange": sandbox.exchange.stats(),
                "requests": dict(sandbox.requests),
            }
        )

    return [
        web.get("/_sandbox/health", health),
        web.get("/_sandbox/accounts", accounts),
        web.get("/_sandbox/faults", faults),
        web.put("/_sandbox/faults", faults),
        web.post("/_sandbox/streams/drop", drop_streams),
        web.post("/_sandbox/streams/silence", silence_streams),
        web.get("/_sandbox/stats", stats),
    ]
