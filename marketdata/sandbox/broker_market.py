"""The Broker API's market reference area: assets, the clock and the trading calendar.

* ``GET /v1/assets`` (``status``, ``asset_class``, ``exchange``, ``attributes``) and
  ``GET /v1/assets/{symbol or id}``: crypto symbols with or without the slash (``BTC/USD``
  arrives unescaped); underlyings of listed options carry ``has_options``.
* ``GET /v1/clock`` and ``GET /v1/calendar`` follow the stock calendar; ``/calendar`` without
  ``start``/``end`` covers a year either side of today; an always-open session reports
  ``00:00``–``23:59``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from . import wire
from .broker_requests import Endpoints, choice, day, optional_choice, respond, values
from .calendar import NEW_YORK
from .errors import invalid, not_found

if TYPE_CHECKING:
    from .server import Sandbox

CALENDAR_MAX_DAYS = 20_000


class MarketEndpoints(Endpoints):
    """Handlers for what the Broker API says about the market itself."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        self.optionable = frozenset(
            a.underlying for a in self.market.assets.values() if a.underlying
        )

    async def list_assets(self, request: web.Request) -> web.Response:
        query = request.query
        status = choice(query, "status", ("active", "inactive"), "active")
        asset_class = optional_choice(query, "asset_class", ("us_equity", "us_option", "crypto"))
        exchange = query.get("exchange")
        attributes = set(values(query, "attributes"))
        found = []
        if status == "active":
            for asset in self.market.assets.values():
                if asset_class and asset.asset_class != asset_class:
                    continue
                if exchange and asset.exchange != exchange:
                    continue
                body = wire.asset(asset, self.optionable)
                if not attributes or attributes.intersection(body["attributes"]):
                    found.append(body)
        return respond(found)

    async def get_asset(self, request: web.Request) -> web.Response:
        asset = self.market.find(request.match_info["symbol"])
        if asset is None:
            raise not_found("asset")
        return respond(wire.asset(asset, self.optionable))

    # -- clock and calendar ----------------------------------------------------------------------
    async def clock(self, request: web.Request) -> web.Response:
        calendar = self.market.stock_calendar
        now = datetime.now(UTC)
        return respond(
            wire.clock(
                now, calendar.is_open(now), calendar.next_open(now), calendar.next_close(now)
            )
        )

    async def calendar(self, request: web.Request) -> web.Response:
        today = datetime.now(NEW_YORK).date()
        first = day(request.query, "start") or today - timedelta(days=365)
        last = day(request.query, "end") or today + timedelta(days=365)
        if last < first:
            raise invalid("end must not be before start")
        if (last - first).days > CALENDAR_MAX_DAYS:
            raise invalid(f"start and end may be at most {CALENDAR_MAX_DAYS} days apart")
        sessions = self.market.stock_calendar.sessions(first, last)
        return respond([wire.calendar_day(session) for session in sessions])
