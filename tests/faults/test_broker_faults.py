"""Alpaca misbehaving under a running application: a 429 storm and 5xx answers, fills made while
the event consumer is down, the market-data stream going silent and then dropped. Each asserts
what the investor sees."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import requests

from marketdata.broker import gateway
from tests.faults.live import consistent, held, streamed_since


async def test_a_429_storm_and_5xx_leave_the_live_value_and_the_summary_standing(
    live, investor, faults
):
    socket = await investor.watch()
    await socket.next_of("snapshot", timeout=30)
    await socket.next_of("update", timeout=30)  # the book has the account: pushes run

    faults(rate_limited=1.0)
    summary = await investor.get("/api/portfolio/summary")  # from the book: no broker call
    assert summary.status == 200, summary
    orders = await investor.get("/api/portfolio/orders")  # needs the broker: says when to retry
    assert orders.status == 503 and orders.body["error"]["code"] == "broker_rate_limited"
    assert int(orders.headers["Retry-After"]) >= 1
    _, update = await socket.next_of("update", timeout=30)  # prices keep moving the value
    consistent(update["data"])

    faults(rate_limited=0.0, server_error=1.0)
    assert (await investor.get("/api/portfolio/summary")).status == 200
    assert (await investor.get("/api/portfolio/orders")).status == 502
    _, update = await socket.next_of("update", timeout=30)
    consistent(update["data"])


async def test_a_fill_made_while_the_event_consumer_is_down_arrives_after_it_restarts(live):
    traded = live.account_ids[1]
    investor = live.investor(traded)
    socket = await investor.watch()
    try:
        _, snapshot = await socket.next_of("snapshot", timeout=30)
        before = held(snapshot["data"]).get("AAPL", Decimal(0))

        live.processes["events"].kill()
        await asyncio.to_thread(gateway().submit_order, traded, "AAPL", Decimal(2), "buy")
        live.start_process("events")

        while True:
            _, update = await socket.next_of("update", timeout=30)
            if held(update["data"]).get("AAPL") == before + 2:
                break
        consistent(update["data"])
    finally:
        await asyncio.to_thread(gateway().submit_order, traded, "AAPL", Decimal(2), "sell")
        await investor.close()


async def test_a_silent_then_dropped_market_data_stream_is_replaced(live, investor, sandbox_url):
    socket = await investor.watch()
    await socket.next_of("snapshot", timeout=30)

    def control(action: str, **body: float) -> None:
        answer = requests.post(f"{sandbox_url}/_sandbox/streams/{action}", json=body, timeout=5)
        answer.raise_for_status()

    for action, body in (("silence", {"seconds": 5}), ("drop", {})):
        await asyncio.to_thread(control, action, **body)
        fault = datetime.now(UTC)
        while True:  # prices streamed after the fault reach the investor again
            _, update = await socket.next_of("update", timeout=30)
            consistent(update["data"])
            if streamed_since(update["data"], fault):
                break
