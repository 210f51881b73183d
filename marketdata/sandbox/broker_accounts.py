"""The Broker API's account area: accounts and trade accounts, history, positions, activities.

* ``GET /v1/accounts`` searches number, owner and e-mail (``query``) and filters by creation
  time and ``status`` (every sandbox account is ACTIVE); ``GET /v1/accounts/{id}``.
* ``GET /v1/trading/accounts/{id}/account``: equity, cash and the exchange's buying power
  (:mod:`.exchange`) and withdrawable cash (:mod:`.funding`); ``.../portfolio/history`` is
  :mod:`.history`'s.
* Positions price every holding at the last price; the intraday P/L is measured from the
  last close, or from the entry price for shares bought today (:meth:`.world.World.day_bases`);
  ``qty_available`` nets out what open orders on the closing side still hold.
  ``GET /v1/accounts/positions`` answers every account's at once.
* History timestamps are epoch seconds, or milliseconds for the share of requests the
  ``history_milliseconds`` fault knob asks for.
* Activities sort by id (ids start with the time) and page for real: ``page_token`` is the id
  of the previous page's last item. ``date`` takes the date as written (a timestamp's time
  and offset are ignored) and, as at Alpaca, lifts the page-size limit. Without
  ``account_id`` every account's ledger is scanned.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from aiohttp import web

from marketdata import moments

from . import wire
from .accounts import ZERO, Account, Activity
from .broker_requests import (
    DIRECTIONS,
    Endpoints,
    choice,
    day,
    integer,
    moment,
    parse_uuid,
    raw_json,
    respond,
    values,
)
from .calendar import NEW_YORK
from .errors import ApiError, invalid, unauthorized
from .history import HistoryQuery, portfolio_history

ACTIVITIES_PAGE = 100
ACTIVITY_ID = re.compile(r"[0-9]{17}::[0-9a-fA-F-]{36}")
ACTIVITY_TYPE = re.compile(r"[A-Z]+")


class AccountEndpoints(Endpoints):
    """Handlers for accounts, their balances, history, positions and ledger."""

    async def list_accounts(self, request: web.Request) -> web.Response:
        query = request.query
        tokens = (query.get("query") or "").lower().split()
        after = moment(query, "created_after")
        before = moment(query, "created_before")
        statuses = set(values(query, "status"))
        newest_first = choice(query, "sort", DIRECTIONS, "desc") == "desc"
        candidates = self.world.accounts.values()
        if statuses and "ACTIVE" not in statuses:
            candidates = []  # every sandbox account is ACTIVE
        found = []
        for account in candidates:
            if after is not None and account.created_at <= after:
                continue
            if before is not None and account.created_at >= before:
                continue
            haystack = f"{account.account_number} {account.owner} {wire.email(account)}".lower()
            if all(token in haystack for token in tokens):
                found.append(account)
        found.sort(key=lambda a: a.created_at, reverse=newest_first)
        return respond([wire.account(account) for account in found])

    async def get_account(self, request: web.Request) -> web.Response:
        return respond(wire.account(self.account(request)))

    async def trade_account(self, request: web.Request) -> web.Response:
        account = self.account(request)
        long_value, short_value = self.world.long_short(account)
        previous_close = self.world.previous_close_time()
        exchange = self.sandbox.exchange
        return respond(
            wire.trade_account(
                account,
                long_value,
                short_value,
                previous_close,
                buying_power=exchange.buying_power(account),
                cash_buying_power=exchange.buying_power(account, marginable=False),
                withdrawable=exchange.funding.withdrawable(account),
                last=self.world.last_balances(account),
            )
        )

    async def history(self, request: web.Request) -> web.Response:
        account = self.account(request)
        query = HistoryQuery.parse(request.query)
        result = portfolio_history(self.world, account, query, datetime.now(UTC))
        milliseconds = self.sandbox.faults.chance("history_milliseconds")
        return respond(wire.portfolio_history(result, milliseconds))

    # -- positions ------------------------------------------------------------------------------
    def quotes(self, symbols: Iterable[str]) -> dict[str, wire.Quote]:
        """Current and last-close prices of each symbol, computed once per request."""
        market = self.market
        return {
            symbol: wire.Quote.of(
                market.assets[symbol], market.last_price(symbol), market.prev_close(symbol)
            )
            for symbol in symbols
        }

    @staticmethod
    def held_for_orders(account: Account) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        """Quantities open orders still hold, by symbol: (sells, buys)."""
        sells: dict[str, Decimal] = {}
        buys: dict[str, Decimal] = {}
        for order in account.orders:
            if order.is_open:
                side = sells if order.side == "sell" else buys
                symbol = order.asset.symbol
                side[symbol] = side.get(symbol, ZERO) + order.qty - order.filled_qty
        return sells, buys

    def account_positions(
        self,
        account: Account,
        quotes: dict[str, wire.Quote],
        day_starts: dict[str, datetime] | None = None,
    ) -> list[str]:
        """The account's positions in the quoted symbols, by symbol, as JSON texts.

        ``qty_available`` nets out what open orders on the closing side still hold;
        ``day_starts`` (:meth:`.world.World.day_starts`, now's unless given: the bulk answer
        computes them once) tell today's fills from older ones.
        """
        sells, buys = self.held_for_orders(account)
        starts = day_starts or self.world.day_starts(datetime.now(UTC))
        bases = self.world.day_bases(account, starts)
        out = []
        for symbol in sorted(account.holdings):
            if symbol not in quotes:
                continue
            holding = account.holdings[symbol]
            if holding.qty > 0:
                available = max(holding.qty - sells.get(symbol, ZERO), ZERO)
            else:
                available = min(holding.qty + buys.get(symbol, ZERO), ZERO)
            out.append(wire.position(holding, quotes[symbol], available, bases.get(symbol)))
        return out

    async def all_positions(self, request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        quotes = self.quotes(self.market.assets.keys())
        starts = self.world.day_starts(now)
        accounts = ",".join(
            f'"{key}":[{",".join(self.account_positions(account, quotes, starts))}]'
            for key, account in self.world.accounts.items()
            if account.holdings
        )
        return raw_json(f'{{"as_of":"{moments.iso(now)}","positions":{{{accounts}}}}}')

    async def positions(self, request: web.Request) -> web.Response:
        account = self.account(request)
        positions = self.account_positions(account, self.quotes(account.holdings.keys()))
        return raw_json(f"[{','.join(positions)}]")

    async def position(self, request: web.Request) -> web.Response:
        account = self.account(request)
        asset = self.market.find(request.match_info["symbol"])
        if asset is None or asset.symbol not in account.holdings:
            raise ApiError(404, 40410000, "position does not exist")
        (position,) = self.account_positions(account, self.quotes([asset.symbol]))
        return raw_json(position)

    # -- activities ------------------------------------------------------------------------------
    async def activities(self, request: web.Request) -> web.Response:
        query = request.query
        accounts = self.world.accounts.values()
        if raw_account := query.get("account_id"):
            account_id = parse_uuid(raw_account)
            if account_id is None:
                raise invalid("account_id must be a UUID")
            account = self.world.accounts.get(str(account_id))
            if account is None:
                raise unauthorized()
            accounts = [account]
        kinds = set(values(query, "activity_types"))
        if path_kind := request.match_info.get("activity_type"):
            kinds.add(path_kind)
        if not all(ACTIVITY_TYPE.fullmatch(kind) for kind in kinds):
            raise invalid("activity types are upper-case codes such as FILL, CSD, CSW, DIV, FEE")
        on = day(query, "date")
        after, until = moment(query, "after"), moment(query, "until")
        if on is not None:
            if after is not None or until is not None:
                raise invalid("date cannot be combined with after or until")
            after = datetime.combine(on, time(0), NEW_YORK) - timedelta(microseconds=1)
            until = datetime.combine(on + timedelta(days=1), time(0), NEW_YORK)
        newest_first = choice(query, "direction", DIRECTIONS, "desc") == "desc"
        if on is None:
            page_size = integer(query, "page_size", ACTIVITIES_PAGE, 1, ACTIVITIES_PAGE)
        else:
            page_size = integer(query, "page_size", 10**9, 1, 10**9)
        token = query.get("page_token")
        if token and not ACTIVITY_ID.fullmatch(token):
            raise invalid("page_token must be the id of an activity")

        def wanted(activity: Activity) -> bool:
            return (
                (not kinds or activity.activity_type in kinds)
                and (after is None or activity.at > after)
                and (until is None or activity.at < until)
                and (not token or (activity.id < token if newest_first else activity.id > token))
            )

        candidates = (a for account in accounts for a in account.activities if wanted(a))
        pick = heapq.nlargest if newest_first else heapq.nsmallest
        page = pick(page_size, candidates, key=lambda activity: activity.id)
        return respond([wire.activity(activity) for activity in page])
