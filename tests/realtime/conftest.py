"""Fixtures and helpers for the real-time pipeline's tests (real Redis, the session sandbox)."""

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

import pytest

from marketdata.book import keys
from marketdata.types import Position

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Bounded polling, for changes in Redis or the sandbox that announce themselves nowhere."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def position(
    symbol: str,
    qty: str,
    *,
    avg: str = "100",
    price: str = "110",
    lastday: str | None = "105",
    asset_class: str = "us_equity",
    account_id: str = "",
) -> Position:
    """A broker position as the gateway returns it, for books built by hand."""
    quantity, current = Decimal(qty), Decimal(price)
    multiplier = 100 if asset_class == "us_option" else 1
    return Position(
        account_id=account_id,
        asset_id=str(uuid.uuid4()),
        symbol=symbol,
        asset_class=asset_class,
        exchange="CRYPTO" if asset_class == "crypto" else "NASDAQ",
        side="short" if quantity < 0 else "long",
        qty=quantity,
        avg_entry_price=Decimal(avg),
        cost_basis=quantity * Decimal(avg) * multiplier,
        market_value=quantity * current * multiplier,
        current_price=current,
        lastday_price=None if lastday is None else Decimal(lastday),
        unrealized_pl=None,
        unrealized_plpc=None,
        unrealized_intraday_pl=None,
        change_today=None,
        qty_available=quantity,
    )


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="session")
def dedicated_account(sandbox_accounts: list[dict]) -> str:
    """The LAST cash-only account: simulated customers never trade it and other tests use the
    first of each shape, so these tests may buy, sell and fund it."""
    return [a["id"] for a in sandbox_accounts if a["shape"] == "cash_only"][-1]


@pytest.fixture
def symbol_changes(redis_client) -> Iterator[Callable[[], list[dict]]]:
    """Read the tracked-set changes published since the test began, in order."""
    pubsub = redis_client.pubsub()
    pubsub.subscribe(keys.SYMBOLS_CHANNEL)

    def read() -> list[dict]:
        messages = []
        while (message := pubsub.get_message(timeout=0.2)) is not None:
            if message["type"] == "message":
                messages.append(json.loads(message["data"]))
        return messages

    yield read
    pubsub.close()
