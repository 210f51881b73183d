"""The one module through which the product calls Alpaca's Broker API.

alpaca-py's ``BrokerClient`` does the HTTP; this gateway makes it safe to call from a web
request or an event loop: every call has a timeout, a 429 fails fast instead of sleeping ~9 s
in the SDK, results are frozen records with exact ``Decimal`` money (:mod:`marketdata.types`),
and every failure is one of our own exceptions (:mod:`marketdata.errors`), logged once.

This module holds the calls and the one entry point; what they stand on lives beside it:
:mod:`marketdata.broker_arguments` (arguments checked before anything is sent),
:mod:`marketdata.broker_client` (the SDK client: timeouts, no silent retries, one per thread)
and :mod:`marketdata.broker_failures` (the one translation of failures, secrets redacted).

Use ``gateway()`` from sync code and ``gateway().aio`` from async code::

    snapshot = gateway().account(account_id)
    positions = await gateway().aio.positions(account_id)
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from alpaca.broker import BrokerClient
from alpaca.broker.enums import TransferTiming
from alpaca.broker.requests import (
    CreateACHRelationshipRequest,
    CreateACHTransferRequest,
    GetAccountActivitiesRequest,
    GetTransfersRequest,
)
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import GetAssetsRequest, GetOrdersRequest, GetPortfolioHistoryRequest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import broker_arguments as checked
from .broker_client import ThreadClients
from .broker_failures import FAILURES, FailureTranslator
from .errors import BrokerRejected
from .types import (
    AccountSnapshot,
    AchRelationship,
    Activity,
    AllPositions,
    Asset,
    Clock,
    Order,
    PortfolioHistory,
    Position,
    Transfer,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Threads behind ``gateway().aio``, shared by every gateway in the process. It bounds how many
#: broker calls async code has in flight (one connection each): enough that a slow call does
#: not queue the others, few enough to stay far below Alpaca's per-minute rate limit.
ASYNC_WORKERS = 16
_executor = ThreadPoolExecutor(max_workers=ASYNC_WORKERS, thread_name_prefix="broker-gateway")

_CENT = Decimal("0.01")
_ORDER_TYPES = ("market", "limit")


class BrokerGateway:
    """Typed, time-bounded calls to the Broker API; raises only :class:`BrokerError` subclasses.

    Settings (ALPACA_BROKER_URL, ALPACA_BROKER_CREDENTIALS, ALPACA_SANDBOX, ALPACA_TIMEOUT) are
    read once, here. Invalid arguments raise :class:`BrokerRejected` before anything is sent.
    """

    def __init__(self) -> None:
        key, secret = settings.ALPACA_BROKER_CREDENTIALS
        if not key or not secret:
            raise ImproperlyConfigured("ALPACA_BROKER_CREDENTIALS needs a key and a secret")
        self._url = settings.ALPACA_BROKER_URL.rstrip("/")
        self._timeout = float(settings.ALPACA_TIMEOUT)
        self._clients = ThreadClients(
            key, secret, self._url, settings.ALPACA_SANDBOX, self._timeout
        )
        self._failures = FailureTranslator(
            key, secret, self._timeout, probe=lambda: self._clients.current().get("/clock")
        )

    def __repr__(self) -> str:
        host = urlsplit(self._url).netloc.rpartition("@")[2]  # never user:password@
        return f"<BrokerGateway {host} timeout={self._timeout:g}s>"

    @functools.cached_property
    def aio(self) -> AsyncBrokerGateway:
        """The same calls as coroutines, run on worker threads so the event loop never blocks."""
        return AsyncBrokerGateway(self)

    # --- Accounts and positions -------------------------------------------------------------

    def account(self, account_id: str | UUID) -> AccountSnapshot:
        """The account's balances now (Alpaca's trading account)."""
        account_id = checked.account_id(account_id)
        return self._call(
            "account",
            lambda client: client.get_trade_account_by_id(account_id),
            AccountSnapshot.from_wire,
            account_scoped=True,
        )

    def all_positions(self) -> AllPositions:
        """Every account's positions in ONE request (Alpaca's bulk endpoint)."""
        return self._call(
            "all_positions",
            lambda client: client.get_all_accounts_positions(),
            AllPositions.from_wire,
        )

    def positions(self, account_id: str | UUID) -> tuple[Position, ...]:
        """The account's open positions."""
        account_id = checked.account_id(account_id)
        return self._call(
            "positions",
            lambda client: client.get_all_positions_for_account(account_id),
            _each(functools.partial(Position.from_wire, account_id=account_id)),
            account_scoped=True,
        )

    def portfolio_history(
        self,
        account_id: str | UUID,
        period: str | None = None,
        timeframe: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        intraday_reporting: str | None = None,
        pnl_reset: str | None = None,
    ) -> PortfolioHistory:
        """Equity over time. ``period`` like 1D, 1W, 3M, 1A; 1Y is accepted and sent as 1A.

        Alpaca has no MAX period: pass ``start`` = the account's creation and timeframe 1D.
        """
        account_id = checked.account_id(account_id)
        if period and period.upper().endswith("Y"):
            period = period[:-1] + "A"  # Alpaca spells a year A
        history_filter = checked.sdk_request(
            GetPortfolioHistoryRequest,
            period=period,
            timeframe=timeframe,
            start=start,
            end=end,
            intraday_reporting=intraday_reporting,
            pnl_reset=pnl_reset,
        )
        return self._call(
            "portfolio_history",
            lambda client: client.get_portfolio_history_for_account(account_id, history_filter),
            PortfolioHistory.from_wire,
            account_scoped=True,
        )

    def activities(
        self,
        account_id: str | UUID,
        activity_types: Iterable[str] | None = None,
        page_size: int = 100,
        page_token: str | None = None,
        direction: str = "desc",
        after: datetime | None = None,
        until: datetime | None = None,
    ) -> tuple[tuple[Activity, ...], str | None]:
        """ONE page of the account's activities and the token for the next (None at the end).

        The SDK would follow every page before returning; we ask for one. Alpaca sends no
        cursor: the next page starts after the last activity's id, so a full page may be
        followed by an empty one.
        """
        account_id = checked.account_id(account_id)
        activity_filter = checked.sdk_request(
            GetAccountActivitiesRequest,
            account_id=account_id,
            activity_types=list(activity_types) if activity_types is not None else None,
            page_size=page_size,
            page_token=page_token,
            direction=direction,
            after=after,
            until=until,
        )

        def page(wire: Any) -> tuple[tuple[Activity, ...], str | None]:
            items = tuple(Activity.from_wire(item) for item in wire)
            return items, items[-1].id if items and len(items) >= page_size else None

        return self._call(
            "activities",
            lambda client: client.get("/accounts/activities", activity_filter.to_request_fields()),
            page,
            account_scoped=True,
        )

    # --- Assets and the clock ---------------------------------------------------------------

    def asset(self, symbol_or_id: str | UUID) -> Asset:
        """One asset by symbol (``AAPL``, ``BRK.B``, ``BTC/USD``) or asset id."""
        key = checked.asset_key(symbol_or_id)
        return self._call("asset", lambda client: client.get_asset(key), Asset.from_wire)

    def assets(
        self,
        status: str | None = None,
        asset_class: str | None = None,
        exchange: str | None = None,
        attributes: str | None = None,
    ) -> tuple[Asset, ...]:
        """The asset master list, optionally filtered (e.g. status="active")."""
        asset_filter = checked.sdk_request(
            GetAssetsRequest,
            status=status,
            asset_class=asset_class,
            exchange=exchange,
            attributes=attributes,
        )
        return self._call(
            "assets",
            lambda client: client.get_all_assets(asset_filter),
            _each(Asset.from_wire),
        )

    def clock(self) -> Clock:
        """Whether the market is open, and the next open and close."""
        return self._call("clock", lambda client: client.get_clock(), Clock.from_wire)

    # --- Orders -----------------------------------------------------------------------------

    def orders(
        self,
        account_id: str | UUID,
        status: str | None = None,
        limit: int | None = None,
        after: datetime | None = None,
        until: datetime | None = None,
        direction: str | None = None,
        side: str | None = None,
        symbols: Iterable[str] | None = None,
    ) -> tuple[Order, ...]:
        """The account's orders; ``status`` is open (Alpaca's default), closed or all."""
        account_id = checked.account_id(account_id)
        order_filter = checked.sdk_request(
            GetOrdersRequest,
            status=status,
            limit=limit,
            after=after,
            until=until,
            direction=direction,
            side=side,
            symbols=list(symbols) if symbols is not None else None,
        )
        return self._call(
            "orders",
            lambda client: client.get_orders_for_account(account_id, order_filter),
            _each(Order.from_wire),
            account_scoped=True,
        )

    def submit_order(
        self,
        account_id: str | UUID,
        symbol: str,
        qty: Decimal,
        side: str,
        type: str = "market",
        time_in_force: str = "day",
        limit_price: Decimal | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """Place a market or limit order; quantities and prices go out as exact decimal strings.

        Never retried: on :class:`BrokerTimeout` the order may exist; look it up by
        ``client_order_id`` before sending it again.
        """
        account_id = checked.account_id(account_id)
        if type not in _ORDER_TYPES:
            raise BrokerRejected(f"order type must be one of {', '.join(_ORDER_TYPES)}")
        if (limit_price is None) == (type == "limit"):
            raise BrokerRejected("a limit price is required for limit orders and only for them")
        body = {
            "symbol": checked.symbol(symbol),
            "qty": checked.wire_amount("qty", qty),
            "side": checked.choice("side", side, OrderSide),
            "type": type,
            "time_in_force": checked.choice("time_in_force", time_in_force, TimeInForce),
        }
        if limit_price is not None:
            body["limit_price"] = checked.wire_amount("limit_price", limit_price)
        if client_order_id is not None:
            body["client_order_id"] = client_order_id
        return self._call(
            "submit_order",
            lambda client: client.post(f"/trading/accounts/{account_id}/orders", body),
            Order.from_wire,
            account_scoped=True,
            places_order=True,
        )

    # --- Funding ----------------------------------------------------------------------------

    def transfers(
        self, account_id: str | UUID, limit: int = 50, offset: int = 0
    ) -> tuple[Transfer, ...]:
        """ONE page of the account's transfers, newest first (the SDK would fetch them all)."""
        account_id = checked.account_id(account_id)
        transfer_filter = checked.sdk_request(GetTransfersRequest, limit=limit, offset=offset)
        return self._call(
            "transfers",
            lambda client: client.get(
                f"/accounts/{account_id}/transfers", transfer_filter.to_request_fields()
            ),
            _each(Transfer.from_wire),
            account_scoped=True,
        )

    def ach_relationships(self, account_id: str | UUID) -> tuple[AchRelationship, ...]:
        """The account's linked bank accounts."""
        account_id = checked.account_id(account_id)
        return self._call(
            "ach_relationships",
            lambda client: client.get_ach_relationships_for_account(account_id),
            _each(AchRelationship.from_wire),
            account_scoped=True,
        )

    def create_ach_relationship(
        self,
        account_id: str | UUID,
        account_owner_name: str,
        bank_account_type: str,
        bank_account_number: str,
        bank_routing_number: str,
        nickname: str | None = None,
    ) -> AchRelationship:
        """Link a bank account (CHECKING or SAVINGS) to the account for ACH transfers."""
        account_id = checked.account_id(account_id)
        relationship = checked.sdk_request(
            CreateACHRelationshipRequest,
            account_owner_name=account_owner_name,
            bank_account_type=bank_account_type,
            bank_account_number=bank_account_number,
            bank_routing_number=bank_routing_number,
            nickname=nickname,
        )
        return self._call(
            "create_ach_relationship",
            lambda client: client.create_ach_relationship_for_account(account_id, relationship),
            AchRelationship.from_wire,
            account_scoped=True,
        )

    def create_transfer(
        self, account_id: str | UUID, amount: Decimal, direction: str, relationship_id: str | UUID
    ) -> Transfer:
        """Move ``amount`` (whole cents) INCOMING to or OUTGOING from the account, by ACH."""
        account_id = checked.account_id(account_id)
        transfer = checked.sdk_request(
            CreateACHTransferRequest,
            amount=checked.wire_amount("amount", amount, _CENT),
            direction=direction,
            timing=TransferTiming.IMMEDIATE,
            relationship_id=relationship_id,
        )
        return self._call(
            "create_transfer",
            lambda client: client.create_transfer_for_account(account_id, transfer),
            Transfer.from_wire,
            account_scoped=True,
        )

    # --- Plumbing ---------------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        send: Callable[[BrokerClient], Any],
        parse: Callable[[Any], T],
        *,
        account_scoped: bool = False,
        places_order: bool = False,
    ) -> T:
        """Send, parse, and turn any failure into one logged :class:`BrokerError`."""
        try:
            return parse(send(self._clients.current()))
        except FAILURES as failure:
            error = self._failures.translate(
                failure, account_scoped=account_scoped, places_order=places_order
            )
            cause = self._failures.redact(f"{type(failure).__name__}: {failure}")[:300]
        logger.warning(
            "broker %s failed: status=%s %s (%s)",
            operation,
            error.status or "-",
            type(error).__name__,
            cause,
        )
        raise error


class AsyncBrokerGateway:
    """``await gateway().aio.<method>(...)``: every public gateway call, on a worker thread.

    The wrappers are generated, so they take and return exactly what the sync methods do.
    """

    def __init__(self, gateway: BrokerGateway) -> None:
        self._gateway = gateway

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_") or not callable(getattr(BrokerGateway, name, None)):
            raise AttributeError(f"{type(self).__name__} has no call {name!r}")
        call = getattr(self._gateway, name)

        @functools.wraps(call)
        async def run(*args: Any, **kwargs: Any) -> Any:
            # Like asyncio.to_thread, but on our bounded pool; context vars go along.
            context = contextvars.copy_context()
            return await asyncio.get_running_loop().run_in_executor(
                _executor, functools.partial(context.run, call, *args, **kwargs)
            )

        return run


_gateway: BrokerGateway | None = None
_gateway_lock = threading.Lock()


def gateway() -> BrokerGateway:
    """The process's gateway, built on first use (so settings are read after they load)."""
    global _gateway
    with _gateway_lock:
        if _gateway is None:
            _gateway = BrokerGateway()
        return _gateway


@receiver(setting_changed)
def _forget_gateway(setting: str, **kwargs: Any) -> None:
    """Rebuild the gateway after a test overrides an ALPACA_* setting."""
    global _gateway
    if setting.startswith("ALPACA_"):
        with _gateway_lock:
            _gateway = None


def _each(parse: Callable[[Any], T]) -> Callable[[Any], tuple[T, ...]]:
    """A parser for a JSON list of records, from the parser of one."""
    return lambda wire: tuple(parse(item) for item in wire)
