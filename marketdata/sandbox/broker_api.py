"""Alpaca's Broker REST API over the sandbox's world, as ``alpaca.broker.BrokerClient`` calls it.

Served under ``/v1`` (credentials are checked by the server's middleware):

* accounts: ``GET /accounts`` (``query``, ``created_after``, ``created_before``, ``status``,
  ``sort``), ``GET /accounts/{id}``, ``GET /trading/accounts/{id}/account``;
* positions: ``GET /accounts/positions`` (every account, current prices),
  ``GET /trading/accounts/{id}/positions`` and ``.../positions/{symbol or asset id}``;
* orders: ``GET``/``POST /trading/accounts/{id}/orders``, ``GET``/``DELETE .../orders/{id}``,
  ``GET .../orders:by_client_order_id``;
* assets: ``GET /assets``, ``GET /assets/{symbol or id}`` (``BTC/USD`` arrives unescaped);
* activities: ``GET /accounts/activities`` and ``/accounts/activities/{type}``;
* funding: ``GET``/``POST /accounts/{id}/transfers``, ``DELETE .../transfers/{id}``,
  ``GET``/``POST /accounts/{id}/ach_relationships``, ``DELETE .../ach_relationships/{id}``;
* ``GET /clock``, ``GET /calendar``, and portfolio history (see :mod:`.history`).

Decisions a user of the sandbox should know:

* An unknown or malformed account id in a path answers 401 ``request is not authorized``, as
  Alpaca does; other unknown ids answer 404 ``{"code": 40410000, "message": "... not found"}``.
* A malformed query value or body answers 422 ``{"code": 40010001, "message": ...}`` naming the
  parameter and what is valid. Rejections by the exchange (:mod:`.exchange`) keep its status
  and code. An unexpected failure is logged with its traceback and answers 500
  ``{"code": 50010000, "message": "internal server error"}``; the server keeps serving.
* Lists accept repeated keys and comma lists alike (the SDK sends ``activity_types`` and
  ``status`` as repeated keys, ``symbols`` as a comma list).
* Crypto symbols are accepted with or without the slash (``BTC/USD``, ``BTCUSD``).
* Activities sort by id (ids start with the time) and page for real: ``page_token`` is the id
  of the previous page's last item. ``date`` takes the date as written (a timestamp's time
  and offset are ignored) and, as at Alpaca, lifts the page-size limit. Without
  ``account_id`` every account's ledger is scanned.
* Transfers are listed newest first and page with ``offset``/``limit`` (default 100, max 500).
* Orders: ``market`` and ``limit`` only, crypto with time in force gtc or ioc; ``notional``
  becomes a quantity at the last price (fractionable assets, market orders only). Buying
  power, quantities held and what may be canceled are the exchange's to judge.
* A transfer without ``relationship_id`` uses the account's first approved relationship.
* Deleting an ACH relationship removes it (alpaca-py has no status for a deleted one).
* ``/calendar`` without ``start``/``end`` covers a year either side of today; an always-open
  session reports ``00:00``–``23:59``.
"""

from __future__ import annotations

import functools
import heapq
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import MultiMapping

from . import wire
from .calendar import NEW_YORK
from .exchange import ExchangeError
from .history import HistoryQuery, parse_moment, portfolio_history
from .market import Asset
from .wire import ApiError
from .world import ZERO, Account, Activity, Order

if TYPE_CHECKING:
    from .server import Sandbox

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

INTERNAL_ERROR = {"code": 50010000, "message": "internal server error"}
FRACTION = Decimal("1E-9")
ORDER_STATUS_QUERY = ("open", "closed", "all")
DIRECTIONS = ("desc", "asc")
SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit")
TIME_IN_FORCE = ("day", "gtc", "ioc", "fok", "opg", "cls")
CRYPTO_TIME_IN_FORCE = ("gtc", "ioc")
ORDERS_DEFAULT, ORDERS_MAX = 50, 500
ACTIVITIES_PAGE = 100
TRANSFERS_DEFAULT, TRANSFERS_MAX = 100, 500
CALENDAR_MAX_DAYS = 20_000
ACTIVITY_ID = re.compile(r"[0-9]{17}::[0-9a-fA-F-]{36}")
ACTIVITY_TYPE = re.compile(r"[A-Z]+")
ROUTING_NUMBER = re.compile(r"[0-9]{9}")
BANK_ACCOUNT_NUMBER = re.compile(r"[0-9]{4,17}")
BANK_ACCOUNT_TYPES = ("CHECKING", "SAVINGS")
TRANSFER_DIRECTIONS = ("INCOMING", "OUTGOING")


def raw_json(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json")


def respond(body: object, status: int = 200) -> web.Response:
    return raw_json(json.dumps(body, separators=(",", ":")), status)


def unauthorized() -> ApiError:
    return ApiError(401, 40110000, "request is not authorized")


def not_found(what: str) -> ApiError:
    return ApiError(404, 40410000, f"{what} not found")


def invalid(message: str) -> ApiError:
    return ApiError(422, 40010001, message)


def guarded(handler: Handler) -> Handler:
    """Answer refusals as Alpaca's error bodies; never let one request's failure escape."""

    @functools.wraps(handler)
    async def guard(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return respond(error.body(), status=error.status)
        except ExchangeError as error:
            return respond({"code": error.code, "message": error.message}, status=error.status)
        except Exception:
            logger.exception("broker API %s %s failed", request.method, request.path_qs)
            return respond(INTERNAL_ERROR, status=500)

    return guard


# -- query and body parsing ----------------------------------------------------------------------
def values(query: MultiMapping[str], name: str) -> list[str]:
    """Every value of a list parameter, whether repeated or comma-separated."""
    return [
        item.strip() for raw in query.getall(name, ()) for item in raw.split(",") if item.strip()
    ]


def choice(query: MultiMapping[str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = query.get(name) or default
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}")
    return value


def optional_choice(query: MultiMapping[str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(name)
    if value and value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}")
    return value or None


def integer(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name} must be an integer between {low} and {high}") from None
    if not low <= value <= high:
        raise invalid(f"{name} must be an integer between {low} and {high}")
    return value


def boolean(query: MultiMapping[str], name: str) -> bool | None:
    raw = query.get(name)
    if not raw:
        return None
    if raw.lower() not in ("true", "false"):
        raise invalid(f"{name} must be true or false")
    return raw.lower() == "true"


def moment(query: MultiMapping[str], name: str) -> datetime | None:
    raw = query.get(name)
    return parse_moment(name, raw) if raw else None


def day(query: MultiMapping[str], name: str) -> date | None:
    """A date, or the date part of a timestamp as written."""
    raw = query.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip()[:10])
    except ValueError:
        raise invalid(f"{name} must be a YYYY-MM-DD date") from None


def parse_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise invalid("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def text_field(body: dict, name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{name} is required and must be a non-empty string")
    return value.strip()


def amount_field(body: dict, name: str, required: bool = True) -> Decimal | None:
    """A positive decimal sent as a string or a number."""
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid(f"{name} must be a positive decimal number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise invalid(f"{name} must be a positive decimal number") from None
    if not amount.is_finite() or amount <= 0:
        raise invalid(f"{name} must be a positive decimal number")
    return amount


def body_choice(body: dict, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
    value = body.get(name, default)
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}")
    return value


# -- the API -------------------------------------------------------------------------------------
class BrokerApi:
    """The handlers, over one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.world = sandbox.world
        self.market = sandbox.market
        assets = self.market.assets.values()
        self.optionable = frozenset(a.underlying for a in assets if a.underlying)
        self.unslashed = {a.symbol.replace("/", ""): a for a in assets if a.is_crypto}

    def routes(self) -> list[web.RouteDef]:
        accounts = "/v1/accounts/{account_id}"
        trading = "/v1/trading/accounts/{account_id}"
        table: list[tuple[str, str, Handler]] = [
            # Fixed paths first: /v1/accounts/positions is not an account id.
            ("GET", "/v1/accounts", self.list_accounts),
            ("GET", "/v1/accounts/positions", self.all_positions),
            ("GET", "/v1/accounts/activities", self.activities),
            ("GET", "/v1/accounts/activities/{activity_type}", self.activities),
            ("GET", accounts, self.get_account),
            ("GET", accounts + "/transfers", self.list_transfers),
            ("POST", accounts + "/transfers", self.create_transfer),
            ("DELETE", accounts + "/transfers/{transfer_id}", self.cancel_transfer),
            ("GET", accounts + "/ach_relationships", self.list_relationships),
            ("POST", accounts + "/ach_relationships", self.create_relationship),
            ("DELETE", accounts + "/ach_relationships/{relationship_id}", self.delete_relationship),
            ("GET", trading + "/account", self.trade_account),
            ("GET", trading + "/account/portfolio/history", self.history),
            ("GET", trading + "/positions", self.positions),
            ("GET", trading + "/positions/{symbol:.+}", self.position),
            ("GET", trading + "/orders", self.list_orders),
            ("POST", trading + "/orders", self.submit_order),
            ("GET", trading + "/orders:by_client_order_id", self.get_order_by_client_id),
            ("GET", trading + "/orders/{order_id}", self.get_order),
            ("DELETE", trading + "/orders/{order_id}", self.cancel_order),
            ("GET", "/v1/assets", self.list_assets),
            ("GET", "/v1/assets/{symbol:.+}", self.get_asset),
            ("GET", "/v1/clock", self.clock),
            ("GET", "/v1/calendar", self.calendar),
        ]
        return [web.route(method, path, guarded(handler)) for method, path, handler in table]

    # -- lookups ---------------------------------------------------------------------------------
    def account(self, request: web.Request) -> Account:
        """The path's account; unknown or malformed ids are 401, as at Alpaca."""
        account_id = parse_uuid(request.match_info["account_id"])
        account = self.world.accounts.get(str(account_id)) if account_id else None
        if account is None:
            raise unauthorized()
        return account

    def find_asset(self, key: str) -> Asset | None:
        """An asset by symbol (crypto with or without the slash) or by id."""
        assets = self.market.assets
        found = assets.get(key) or assets.get(key.upper()) or self.unslashed.get(key.upper())
        if found is None and (asset_id := parse_uuid(key)) is not None:
            found = self.market.assets_by_id.get(str(asset_id))
        return found

    def order_of(self, account: Account, request: web.Request) -> Order:
        order_id = parse_uuid(request.match_info["order_id"])
        if order_id is None:
            raise invalid("order_id must be a UUID")
        owner, order = self.world.orders.get(str(order_id), (None, None))
        if owner is not account or order is None:
            raise not_found("order")
        return order

    # -- accounts --------------------------------------------------------------------------------
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
                withdrawable=exchange.withdrawable(account),
            )
        )

    async def history(self, request: web.Request) -> web.Response:
        account = self.account(request)
        query = HistoryQuery.parse(request.query)
        result = portfolio_history(self.world, account, query, datetime.now(UTC))
        return respond(wire.portfolio_history(result))

    # -- positions -------------------------------------------------------------------------------
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

    def account_positions(self, account: Account, quotes: dict[str, wire.Quote]) -> list[str]:
        """The account's positions in the quoted symbols, by symbol, as JSON texts.

        ``qty_available`` nets out what open orders on the closing side still hold.
        """
        sells, buys = self.held_for_orders(account)
        out = []
        for symbol in sorted(account.holdings):
            if symbol not in quotes:
                continue
            holding = account.holdings[symbol]
            if holding.qty > 0:
                available = max(holding.qty - sells.get(symbol, ZERO), ZERO)
            else:
                available = min(holding.qty + buys.get(symbol, ZERO), ZERO)
            out.append(wire.position(holding, quotes[symbol], available))
        return out

    async def all_positions(self, request: web.Request) -> web.Response:
        now = datetime.now(UTC)
        quotes = self.quotes(self.market.assets.keys())
        accounts = ",".join(
            f'"{key}":[{",".join(self.account_positions(account, quotes))}]'
            for key, account in self.world.accounts.items()
            if account.holdings
        )
        return raw_json(f'{{"as_of":"{wire.timestamp(now)}","positions":{{{accounts}}}}}')

    async def positions(self, request: web.Request) -> web.Response:
        account = self.account(request)
        positions = self.account_positions(account, self.quotes(account.holdings.keys()))
        return raw_json(f"[{','.join(positions)}]")

    async def position(self, request: web.Request) -> web.Response:
        account = self.account(request)
        asset = self.find_asset(request.match_info["symbol"])
        if asset is None or asset.symbol not in account.holdings:
            raise ApiError(404, 40410000, "position does not exist")
        (position,) = self.account_positions(account, self.quotes([asset.symbol]))
        return raw_json(position)

    # -- orders ----------------------------------------------------------------------------------
    async def list_orders(self, request: web.Request) -> web.Response:
        account = self.account(request)
        query = request.query
        status = choice(query, "status", ORDER_STATUS_QUERY, "open")
        limit = integer(query, "limit", ORDERS_DEFAULT, 1, ORDERS_MAX)
        after = moment(query, "after")
        until = moment(query, "until")
        newest_first = choice(query, "direction", DIRECTIONS, "desc") == "desc"
        boolean(query, "nested")  # validated; the sandbox has no multi-leg orders to nest
        side = optional_choice(query, "side", SIDES)
        symbols = set()
        for key in values(query, "symbols"):
            asset = self.find_asset(key)
            symbols.add(asset.symbol if asset else key)

        def wanted(order: Order) -> bool:
            return (
                (status == "all" or order.is_open == (status == "open"))
                and (after is None or order.submitted_at > after)
                and (until is None or order.submitted_at < until)
                and (side is None or order.side == side)
                and (not symbols or order.asset.symbol in symbols)
            )

        found = sorted(
            (order for order in account.orders if wanted(order)),
            key=lambda order: order.submitted_at,
            reverse=newest_first,
        )
        return respond([wire.order(order) for order in found[:limit]])

    async def get_order(self, request: web.Request) -> web.Response:
        account = self.account(request)
        return respond(wire.order(self.order_of(account, request)))

    async def get_order_by_client_id(self, request: web.Request) -> web.Response:
        account = self.account(request)
        client_order_id = request.query.get("client_order_id")
        if not client_order_id:
            raise invalid("client_order_id is required")
        order = next((o for o in account.orders if o.client_order_id == client_order_id), None)
        if order is None:
            raise not_found("order")
        return respond(wire.order(order))

    async def submit_order(self, request: web.Request) -> web.Response:
        account = self.account(request)
        body = await json_body(request)
        symbol = text_field(body, "symbol")
        asset = self.find_asset(symbol)
        if asset is None:
            raise invalid(f'asset "{symbol}" not found')
        side = body_choice(body, "side", SIDES)
        order_type = body_choice(body, "type", ORDER_TYPES, body.get("order_type"))
        allowed = CRYPTO_TIME_IN_FORCE if asset.is_crypto else TIME_IN_FORCE
        time_in_force = body_choice(body, "time_in_force", allowed)
        if body.get("order_class") not in (None, "", "simple"):
            raise invalid("order_class must be simple: the sandbox has no multi-leg orders")
        limit_price = amount_field(body, "limit_price", required=order_type == "limit")
        if order_type == "market" and limit_price is not None:
            raise invalid("limit_price is only for limit orders")
        qty = self.order_qty(body, asset, order_type)
        client_order_id = text_field(body, "client_order_id", required=False)
        if client_order_id is not None:
            if len(client_order_id) > 128:
                raise invalid("client_order_id must be at most 128 characters")
            if any(order.client_order_id == client_order_id for order in account.orders):
                raise invalid("client_order_id must be unique")
        order = self.sandbox.exchange.submit_order(
            account, asset, side, qty, order_type, time_in_force, limit_price, client_order_id
        )
        return respond(wire.order(order))

    def order_qty(self, body: dict, asset: Asset, order_type: str) -> Decimal:
        """``qty`` as given, or ``notional`` worth at the last price (fractionable, market)."""
        qty = amount_field(body, "qty", required=False)
        notional = amount_field(body, "notional", required=False)
        if (qty is None) == (notional is None):
            raise invalid("give exactly one of qty and notional")
        if notional is not None:
            if order_type != "market" or not asset.fractionable:
                raise invalid("notional orders need a market order on a fractionable asset")
            qty = (notional / self.market.last_price(asset.symbol)).quantize(FRACTION, ROUND_DOWN)
            if qty <= 0:
                raise invalid("notional is too small to buy any quantity")
        if qty != qty.quantize(FRACTION, ROUND_DOWN):
            raise invalid("qty has at most 9 decimal places")
        return qty

    async def cancel_order(self, request: web.Request) -> web.Response:
        account = self.account(request)
        self.sandbox.exchange.cancel_order(account, self.order_of(account, request))
        return web.Response(status=204)

    # -- assets ----------------------------------------------------------------------------------
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
        asset = self.find_asset(request.match_info["symbol"])
        if asset is None:
            raise not_found("asset")
        return respond(wire.asset(asset, self.optionable))

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

    # -- funding ---------------------------------------------------------------------------------
    async def list_transfers(self, request: web.Request) -> web.Response:
        account = self.account(request)
        query = request.query
        direction = optional_choice(query, "direction", TRANSFER_DIRECTIONS)
        limit = integer(query, "limit", TRANSFERS_DEFAULT, 1, TRANSFERS_MAX)
        offset = integer(query, "offset", 0, 0, 10**9)
        found = sorted(
            (t for t in account.transfers if direction is None or t.direction == direction),
            key=lambda transfer: transfer.created_at,
            reverse=True,
        )
        return respond([wire.transfer(t) for t in found[offset : offset + limit]])

    async def create_transfer(self, request: web.Request) -> web.Response:
        account = self.account(request)
        body = await json_body(request)
        if body.get("transfer_type", "ach") != "ach":
            raise invalid("transfer_type must be ach: the sandbox moves money by ACH only")
        relationship_id = None
        if body.get("relationship_id") is not None:
            relationship_id = parse_uuid(str(body["relationship_id"]))
            if relationship_id is None:
                raise invalid("relationship_id must be the UUID of an ACH relationship")
        amount = amount_field(body, "amount")
        direction = body_choice(body, "direction", TRANSFER_DIRECTIONS)
        body_choice(body, "timing", ("immediate",), "immediate")
        transfer = self.sandbox.exchange.submit_transfer(
            account, relationship_id, amount, direction
        )
        return respond(wire.transfer(transfer))

    async def cancel_transfer(self, request: web.Request) -> web.Response:
        account = self.account(request)
        transfer_id = parse_uuid(request.match_info["transfer_id"])
        transfer = next((t for t in account.transfers if t.id == transfer_id), None)
        if transfer is None:
            raise not_found("transfer")
        self.sandbox.exchange.cancel_transfer(account, transfer)
        return web.Response(status=204)

    async def list_relationships(self, request: web.Request) -> web.Response:
        account = self.account(request)
        statuses = set(values(request.query, "statuses"))
        return respond(
            [
                wire.ach_relationship(relationship)
                for relationship in account.relationships
                if not statuses or relationship.status in statuses
            ]
        )

    async def create_relationship(self, request: web.Request) -> web.Response:
        account = self.account(request)
        body = await json_body(request)
        if "processor_token" in body:
            raise invalid("Plaid relationships are not supported: send the bank account details")
        owner_name = text_field(body, "account_owner_name")
        account_type = body_choice(body, "bank_account_type", BANK_ACCOUNT_TYPES)
        number = text_field(body, "bank_account_number")
        if not BANK_ACCOUNT_NUMBER.fullmatch(number):
            raise invalid("bank_account_number must be 4 to 17 digits")
        routing = text_field(body, "bank_routing_number")
        if not ROUTING_NUMBER.fullmatch(routing):
            raise invalid("bank_routing_number must be 9 digits")
        nickname = text_field(body, "nickname", required=False)
        relationship = self.sandbox.exchange.create_relationship(
            account, owner_name, account_type, number, routing, nickname
        )
        return respond(wire.ach_relationship(relationship))

    async def delete_relationship(self, request: web.Request) -> web.Response:
        account = self.account(request)
        relationship_id = parse_uuid(request.match_info["relationship_id"])
        relationship = next((r for r in account.relationships if r.id == relationship_id), None)
        if relationship is None:
            raise not_found("ach relationship")
        account.relationships.remove(relationship)
        return web.Response(status=204)

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


def routes(sandbox: Sandbox) -> list[web.RouteDef]:
    """The Broker API's routes over ``sandbox``."""
    return BrokerApi(sandbox).routes()
