"""The outbox's bounds, with a client whose transport stops taking messages."""

from __future__ import annotations

import asyncio

from realtime.outbox import ORDERED_LIMIT, Outbox


class StuckClient:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self.reading = asyncio.Event()

    async def send(self, message: dict) -> None:
        await self.reading.wait()
        self.received.append(message)


async def test_newest_value_wins_per_key_and_in_order_messages_are_capped():
    client = StuckClient()
    outbox = Outbox(client.send)
    outbox.put({"n": -1})
    await asyncio.sleep(0)  # the flush takes it and is stuck in the transport

    for n in range(10_000):
        outbox.put_latest("update", {"seq": n})
        outbox.put_latest(f"price:{n % 50}", {"symbol": n % 50, "n": n})
    for n in range(ORDERED_LIMIT + 10):
        outbox.put({"reply": n})
    assert len(outbox) == 1 + 50 + ORDERED_LIMIT

    client.reading.set()
    await outbox.flush()
    replies = [m["reply"] for m in client.received if "reply" in m]
    assert replies == list(range(10, ORDERED_LIMIT + 10))  # the oldest ten were dropped
    assert [m for m in client.received if "seq" in m] == [{"seq": 9_999}]
    assert len([m for m in client.received if "symbol" in m]) == 50
    assert len(outbox) == 0
