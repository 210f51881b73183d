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

Each area's handlers live in a module of their own — :mod:`.broker_accounts` (accounts,
positions, activities, history), :mod:`.broker_orders`, :mod:`.broker_funding`,
:mod:`.broker_market` (assets, clock, calendar) — over what they share in
:mod:`.broker_requests`; this module routes to them.

Decisions a user of the sandbox should know:

* An unknown or malformed account id in a path answers 401 ``request is not authorized``, as
  Alpaca does; other unknown ids answer 404 ``{"code": 40410000, "message": "... not found"}``.
* A malformed query value or body answers 422 ``{"code": 40010001, "message": ...}`` naming the
  parameter and what is valid. Rejections by the exchange (:mod:`.exchange`, :mod:`.funding`)
  keep their status and code. An unexpected failure is logged with its traceback and answers 500
  ``{"code": 50010000, "message": "internal server error"}``; the server keeps serving.
* Lists accept repeated keys and comma lists alike (the SDK sends ``activity_types`` and
  ``status`` as repeated keys, ``symbols`` as a comma list).
* Crypto symbols are accepted with or without the slash (``BTC/USD``, ``BTCUSD``).
* What each area decides beyond that (paging, order and transfer rules, the calendar's
  defaults) is written in its module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .broker_accounts import AccountEndpoints
from .broker_funding import FundingEndpoints
from .broker_market import MarketEndpoints
from .broker_orders import OrderEndpoints
from .broker_requests import guarded
from .faults import Handler

if TYPE_CHECKING:
    from .server import Sandbox


def routes(sandbox: Sandbox) -> list[web.RouteDef]:
    """The Broker API's routes over ``sandbox``, in the order they must be matched."""
    account = AccountEndpoints(sandbox)
    orders = OrderEndpoints(sandbox)
    funding = FundingEndpoints(sandbox)
    market = MarketEndpoints(sandbox)
    accounts = "/v1/accounts/{account_id}"
    trading = "/v1/trading/accounts/{account_id}"
    table: list[tuple[str, str, Handler]] = [
        # Fixed paths first: /v1/accounts/positions is not an account id.
        ("GET", "/v1/accounts", account.list_accounts),
        ("GET", "/v1/accounts/positions", account.all_positions),
        ("GET", "/v1/accounts/activities", account.activities),
        ("GET", "/v1/accounts/activities/{activity_type}", account.activities),
        ("GET", accounts, account.get_account),
        ("GET", accounts + "/transfers", funding.list_transfers),
        ("POST", accounts + "/transfers", funding.create_transfer),
        ("DELETE", accounts + "/transfers/{transfer_id}", funding.cancel_transfer),
        ("GET", accounts + "/ach_relationships", funding.list_relationships),
        ("POST", accounts + "/ach_relationships", funding.create_relationship),
        ("DELETE", accounts + "/ach_relationships/{relationship_id}", funding.delete_relationship),
        ("GET", trading + "/account", account.trade_account),
        ("GET", trading + "/account/portfolio/history", account.history),
        ("GET", trading + "/positions", account.positions),
        ("GET", trading + "/positions/{symbol:.+}", account.position),
        ("GET", trading + "/orders", orders.list_orders),
        ("POST", trading + "/orders", orders.submit_order),
        ("GET", trading + "/orders:by_client_order_id", orders.get_order_by_client_id),
        ("GET", trading + "/orders/{order_id}", orders.get_order),
        ("DELETE", trading + "/orders/{order_id}", orders.cancel_order),
        ("GET", "/v1/assets", market.list_assets),
        ("GET", "/v1/assets/{symbol:.+}", market.get_asset),
        ("GET", "/v1/clock", market.clock),
        ("GET", "/v1/calendar", market.calendar),
    ]
    return [web.route(method, path, guarded(handler)) for method, path, handler in table]
