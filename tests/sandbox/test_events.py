"""The Broker event streams (SSE): framing, replay cursors, bounds, heartbeats, slow readers.

Most tests serve their own small sandbox in-process (``tests.sandbox.inprocess``) so they can
publish exactly the events they reason about and use fast heartbeats or tiny queues; the last
one checks that the shared sandbox subprocess serves the streams too.
"""

import asyncio
import json
import re
import socket
from datetime import datetime

import aiohttp
import pytest
import requests
from alpaca.broker.requests import GetEventsRequest
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import MarketOrderRequest
from django.conf import settings
from ulid import ULID

from marketdata.sandbox.events import EventLog
from tests.sandbox.inprocess import EventStream, Served, served

DROPPED = re.compile(r"you are reading too slowly, dropped (\d+) messages")


def publish(
    live: Served, count: int, start: int = 0, account_id: str = "a", **extra: object
) -> list[dict]:
    """Publish ``count`` numbered trade events; returns them as the v2 streams send them."""
    return [
        live.sandbox.events.publish("trades", {"account_id": account_id, "n": n, **extra})
        for n in range(start, start + count)
    ]


async def test_without_a_cursor_a_v2_stream_sends_only_live_events_with_ulid_ids() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        publish(live, 1)
        async with http.get("/v2/events/trades") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/event-stream"
            [sent] = publish(live, 1, start=1)
            frame = await EventStream(response).next()
    assert frame.data == sent
    assert frame.data["n"] == 1
    assert frame.id == frame.data["event_id"] == str(ULID.from_str(frame.id))
    assert datetime.fromisoformat(frame.data["at"]).tzinfo is not None


async def test_since_id_replays_what_followed_then_goes_live_without_gap_or_duplicate() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        published = publish(live, 20)

        async def keep_publishing() -> None:
            for n in range(20, 120):
                published.extend(publish(live, 1, start=n))
                await asyncio.sleep(0.001)

        publisher = asyncio.create_task(keep_publishing())
        await asyncio.sleep(0.01)  # let the publisher run while the client connects
        params = {"since_id": published[9]["event_id"]}
        async with http.get("/v2/events/trades", params=params) as response:
            received = await EventStream(response).data_until(lambda d: d["n"] == 119)
        await publisher
    assert [d["n"] for d in received] == list(range(10, 120))
    assert [d["event_id"] for d in received] == [d["event_id"] for d in published[10:]]


async def test_until_id_ends_the_response_after_the_bound() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        published = publish(live, 10)
        params = {"since_id": published[2]["event_id"], "until_id": published[6]["event_id"]}
        async with http.get("/v2/events/trades", params=params) as response:
            frames = await EventStream(response).to_end()
        assert [f.data["n"] for f in frames if f.data] == [3, 4, 5, 6]

        # The legacy stream counts with integers and can wait live for a bound not yet reached.
        async with http.get(
            "/v1/events/trades", params={"since_id": 8, "until_id": 12}
        ) as response:
            stream = EventStream(response)
            publish(live, 5, start=10)
            legacy = await stream.to_end()
    assert [(f.data["event_id"], f.data["n"]) for f in legacy] == [
        (9, 8),
        (10, 9),
        (11, 10),
        (12, 11),
    ]
    assert all(f.id is None and ULID.from_str(f.data["event_ulid"]) for f in legacy)


async def test_a_time_window_replays_and_ends() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        first = publish(live, 3)
        publish(live, 3, start=3)
        params = {"since": first[0]["at"], "until": first[-1]["at"]}
        async with http.get("/v2/events/trades", params=params) as response:
            frames = await EventStream(response).to_end()
    assert [f.data["n"] for f in frames if f.data] == [0, 1, 2]


async def test_account_id_filters_a_replay() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        mine = publish(live, 2, account_id="mine")
        publish(live, 2, start=2, account_id="other")
        publish(live, 1, start=4, account_id="mine")
        params = {"since_id": mine[0]["event_id"], "account_id": "mine"}
        async with http.get("/v2/events/trades", params=params) as response:
            received = await EventStream(response).data_until(lambda d: d["n"] == 4)
    assert [d["n"] for d in received] == [1, 4]


@pytest.mark.parametrize(
    "params",
    [
        {"since_id": "not-a-ulid"},
        {"until_id": "01J0000000000000000000000"},
        {"since": "2024-01-01", "since_id": "01J00000000000000000000000"},
        {"since": "yesterday"},
    ],
)
async def test_bad_cursors_are_refused(params: dict) -> None:
    async with (
        served() as live,
        live.http() as http,
        http.get("/v2/events/trades", params=params) as response,
    ):
        assert response.status == 400
        assert (await response.json())["code"] == 40010000


async def test_heartbeats_arrive_on_an_idle_stream() -> None:
    async with (
        served(EventLog(heartbeat_seconds=0.2)) as live,
        live.http() as http,
        http.get("/v1/events/accounts/status") as response,
    ):
        stream = EventStream(response)
        frames = [await stream.next(timeout=1.0) for _ in range(3)]
    assert [f.comment for f in frames] == ["heartbeat"] * 3


def _small_receive_buffer(addr_info: tuple) -> socket.socket:
    """A client socket that cannot buffer much, so a reader that stops reading blocks the server."""
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    return sock


async def test_a_slow_reader_is_told_how_many_events_it_lost() -> None:
    events = EventLog(heartbeat_seconds=30, listener_queue=5)
    connector = aiohttp.TCPConnector(socket_factory=_small_receive_buffer)
    async with (
        served(events) as live,
        live.http(connector=connector) as http,
        http.get("/v2/events/trades") as response,
    ):
        padding = "x" * 40_000  # 300 of these are far more than the socket buffers hold
        for n in range(300):
            publish(live, 1, start=n, padding=padding)
            await asyncio.sleep(0)  # let the stream write until it blocks on the reader
        frames = []
        stream = EventStream(response)
        while not frames or frames[-1].data is None or frames[-1].data["n"] != 299:
            frames.append(await stream.next())
    comments = [DROPPED.fullmatch(f.comment) for f in frames if f.comment]
    dropped = sum(int(match.group(1)) for match in comments if match)
    numbers = [f.data["n"] for f in frames if f.data]
    assert dropped > 0
    assert len(numbers) + dropped == 300
    assert numbers == sorted(numbers)


async def test_close_all_ends_every_stream_cleanly() -> None:
    async with (
        served(EventLog(heartbeat_seconds=5)) as live,
        live.http() as http,
        http.get("/v2/events/trades") as trades,
        http.get("/v2/events/funding/status") as funding,
    ):
        await live.sandbox.events.close_all()
        assert await EventStream(trades).to_end(timeout=1.0) == []
        assert await EventStream(funding).to_end(timeout=1.0) == []


async def test_the_sdk_reads_real_order_events_from_the_legacy_stream() -> None:
    async with served(EventLog(heartbeat_seconds=5)) as live, live.http() as http:
        account = next(a for a in live.sandbox.world.accounts.values() if a.shape == "diversified")
        symbol = min(account.holdings, key=live.sandbox.market.last_price)
        client = live.broker()
        async with http.get("/v2/events/trades") as response:
            order = await asyncio.to_thread(
                client.submit_order_for_account,
                str(account.id),
                MarketOrderRequest(
                    symbol=symbol, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
                ),
            )
            await EventStream(response).data_until(lambda d: d["event"] == "fill")
        published = live.sandbox.events.stats()["trades"]["published"]

        def read_legacy() -> list[dict]:
            request = GetEventsRequest(since_id=0, until_id=published)
            return [json.loads(data) for data in client.get_trade_events(request)]

        events = await asyncio.to_thread(read_legacy)
    assert [e["event_id"] for e in events] == list(range(1, published + 1))
    assert events[0]["event"] == "new"
    assert events[-1]["event"] == "fill"
    for event in events:
        update = TradeUpdate(**event)
        assert update.order.id == order.id
        assert update.order.symbol == symbol
    assert TradeUpdate(**events[-1]).order.status == "filled"


def test_the_shared_sandbox_serves_the_event_streams(sandbox_url: str) -> None:
    url = f"{sandbox_url}/v1/events/accounts/status"
    assert requests.get(url, timeout=5).json()["code"] == 40110000
    window = {"since": "2020-01-01", "until": "2020-01-02"}
    auth = (settings.SANDBOX_API_KEY, settings.SANDBOX_SECRET_KEY)
    response = requests.get(url, params=window, auth=auth, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.text == ""
