"""The Broker API's order area: ``/v1/trading/accounts/{id}/orders``, as the SDK places them.

* ``GET .../orders`` lists by ``status`` (open, closed, all), time, side and symbols, newest
  first unless ``direction=asc``; ``GET .../orders/{id}`` and
  ``GET .../orders:by_client_order_id``; ``DELETE .../orders/{id}`` cancels.
* ``POST .../orders``: ``market`` and ``limit`` only, simple (single-leg) orders, crypto with
  time in force gtc or ioc; ``qty`` has at most 9 decimals; ``notional`` becomes a quantity at
  the last price (fractionable assets, market orders only); a ``client_order_id`` is unique
  per account. Buying power, quantities held and what may be canceled are the exchange's to
  judge (:mod:`.exchange`).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from aiohttp import web

from . import wire
from .accounts import Account, Order
from .assets import Asset
from .broker_requests import (
    DIRECTIONS,
    Endpoints,
    amount_field,
    body_choice,
    boolean,
    choice,
    integer,
    json_body,
    moment,
    optional_choice,
    parse_uuid,
    respond,
    text_field,
    values,
)
from .errors import invalid, not_found
from .exchange import ORDER_TYPES, TIME_IN_FORCE

FRACTION = Decimal("1E-9")
ORDER_STATUS_QUERY = ("open", "closed", "all")
SIDES = ("buy", "sell")
CRYPTO_TIME_IN_FORCE = ("gtc", "ioc")
ORDERS_DEFAULT, ORDERS_MAX = 50, 500


class OrderEndpoints(Endpoints):
    """Handlers for one account's orders."""

    def order_of(self, account: Account, request: web.Request) -> Order:
        """The path's order, if it is the account's."""
        order_id = parse_uuid(request.match_info["order_id"])
        if order_id is None:
            raise invalid("order_id must be a UUID")
        owner, order = self.world.orders.get(str(order_id), (None, None))
        if owner is not account or order is None:
            raise not_found("order")
        return order

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
            asset = self.market.find(key)
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
        asset = self.market.find(symbol)
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
