"""The whole pipeline on real parts: the sandbox moves a price, the browser's socket shows it.

Symbol collection fills the book from the sandbox, the real quote consumer streams the
sandbox's prices into the price cache, the calculator values the watched account, and the
socket delivers it. The pushed total must equal a recomputation from the sandbox's own
positions and cash at the pushed prices, to the cent.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from marketdata import book
from marketdata.quotes import QuoteConsumer
from realtime.calculator import Calculator
from realtime.collection import collect_symbols

pytestmark = pytest.mark.django_db(transaction=True)

CENT = Decimal("0.01")


@contextlib.contextmanager
def streaming_quotes() -> Iterator[None]:
    consumer = QuoteConsumer(book.TrackedSymbols(), feed="sip")
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(20)
        assert not thread.is_alive(), "the quote consumer did not stop"


def recompute(
    raw: Any, account_id: str, prices: dict[str, str], value: bool = True
) -> tuple[Decimal, tuple]:
    """Cash + Σ qty × pushed price × multiplier, from the sandbox's own positions and cash;
    also the cash and positions themselves, so a concurrent fill can be told apart."""
    positions = raw(f"/trading/accounts/{account_id}/positions")
    cash = Decimal(raw(f"/trading/accounts/{account_id}/account")["cash"])
    total = cash
    for held in positions if value else ():
        multiplier = 100 if held["asset_class"] == "us_option" else 1
        symbol = held["symbol"]
        price = Decimal(prices.get(symbol) or prices[symbol.replace("USD", "/USD")])
        total += Decimal(held["qty"]) * price * multiplier
    state = (cash, tuple(sorted((p["symbol"], p["qty"]) for p in positions)))
    return total.quantize(CENT), state


async def test_a_sandbox_price_move_reaches_the_socket_exactly(connect, owner, raw) -> None:
    assert await asyncio.to_thread(collect_symbols) is not None
    collected = (await asyncio.to_thread(recompute, raw, owner.account_id, {}, False))[1]
    stop = asyncio.Event()
    calculator = asyncio.create_task(Calculator().run(stop))
    try:
        with streaming_quotes():
            socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
            snapshot = await socket.next_of("snapshot")
            started = datetime.fromisoformat(snapshot["data"]["as_of"].replace("Z", "+00:00"))
            for _ in range(20):  # updates until one is priced by the stream and settles
                update = await socket.next_of("update", timeout=20)
                data = update["data"]
                streamed = [h for h in data["holdings"] if h["price_source"] == "trade"]
                moved = [
                    h
                    for h in streamed
                    if datetime.fromisoformat(h["price_at"].replace("Z", "+00:00")) > started
                ]
                if not moved:
                    continue
                prices = {h["symbol"]: h["price"] for h in data["holdings"]}
                total, state = await asyncio.to_thread(recompute, raw, owner.account_id, prices)
                if state != collected:
                    # A simulated customer traded since the collection (the event consumer,
                    # which would apply it at once, is not running here): collect again.
                    assert await asyncio.to_thread(collect_symbols) is not None
                    collected = state
                    continue
                assert Decimal(data["total_value"]) == total
                return
            raise AssertionError("no update priced by the streamed market arrived")
    finally:
        stop.set()
        await asyncio.wait_for(calculator, 10)
