"""Broker events: the SSE client's cursor, replays and reconnects, and their effect on the book."""

import asyncio
import json
import threading
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests
from aiohttp import web
from django.contrib.auth import get_user_model

from marketdata import book
from marketdata.broker import gateway
from marketdata.events import CURSOR_PREFIX, FUNDING_PATH, BrokerEvent, EventStream
from portfolio.models import BrokerageAccount
from realtime import broker_events, collection
from tests.realtime.conftest import wait_for
from tests.realtime.streams import Proxy, running


def connected(*streams: EventStream) -> bool:
    return all(stream.stats.connections for stream in streams)


@pytest.mark.django_db
def test_fills_and_transfers_reach_the_cached_book(redis_client, dedicated_account) -> None:
    user = get_user_model().objects.create(username="events-owner")
    BrokerageAccount.objects.create(user=user, account_id=dedicated_account)
    collection.collect_symbols()
    start = book.load([dedicated_account])[dedicated_account]
    assert start.ready and start.holdings == ()
    updates = redis_client.pubsub()
    updates.subscribe(broker_events.TRADE_UPDATES_CHANNEL)
    streams = broker_events.event_streams()
    relationship = gateway().ach_relationships(dedicated_account)[0]

    def cached() -> book.CachedAccount:
        return book.load([dedicated_account])[dedicated_account]

    def transfer_done(transfer_id: str) -> bool:
        return any(
            t.id == transfer_id and t.status == "COMPLETE"
            for t in gateway().transfers(dedicated_account, limit=5)
        )

    with running(*streams):
        wait_for(lambda: connected(*streams), what="both event streams to connect")
        gateway().submit_order(dedicated_account, "AAPL", Decimal(3), "buy")
        deposit = gateway().create_transfer(
            dedicated_account, Decimal("100.00"), "INCOMING", relationship.id
        )
        wait_for(lambda: cached().holdings, what="the buy to reach the book")
        wait_for(lambda: transfer_done(deposit.id), what="the deposit to complete")
        wait_for(lambda: cached().cash == gateway().account(dedicated_account).cash, 5, "cash")
        (apple,) = cached().holdings
        (broker_position,) = gateway().positions(dedicated_account)
        assert (apple.symbol, apple.qty) == ("AAPL", broker_position.qty) == ("AAPL", 3)
        assert apple.avg_entry_price == broker_position.avg_entry_price
        cost = (3 * apple.avg_entry_price).quantize(Decimal("0.01"))
        assert cached().cash == start.cash - cost + Decimal("100.00")

        gateway().submit_order(dedicated_account, "AAPL", Decimal(3), "sell")
        wait_for(lambda: not cached().holdings, what="the sell to reach the book")

    final = cached()
    assert final.cash == gateway().account(dedicated_account).cash
    assert dedicated_account not in book.accounts_holding(["AAPL"])
    published = []
    while (message := updates.get_message(timeout=0.2)) is not None:
        if message["type"] == "message":
            published.append(json.loads(message["data"]))
    updates.close()
    mine = [m for m in published if m["account_id"] == dedicated_account]
    assert {m["event"] for m in mine} >= {"new", "fill"} and all(m["event_id"] for m in mine)


def test_the_stream_resumes_from_its_cursor_after_a_drop(
    redis_client, sandbox_url, dedicated_account
) -> None:
    origin = urlsplit(sandbox_url)
    proxy = Proxy(origin.hostname, origin.port)
    handled: list[BrokerEvent] = []
    stream = EventStream("funding", FUNDING_PATH, handled.append, base_url=proxy.origin)
    relationship = gateway().ach_relationships(dedicated_account)[0]

    def transfer() -> str:
        return (
            gateway()
            .create_transfer(dedicated_account, Decimal("1.00"), "INCOMING", relationship.id)
            .id
        )

    def completed(transfer_id: str) -> bool:
        return any(
            e.data.get("entity_id") == transfer_id and e.data.get("status_to") == "COMPLETE"
            for e in handled
        )

    try:
        with running(stream):
            wait_for(lambda: connected(stream), what="the stream to connect")
            first = transfer()
            wait_for(lambda: handled, what="the first event")
            proxy.refuse(True)
            proxy.cut()
            during = [transfer(), transfer()]  # published while nobody listens
            proxy.refuse(False)
            for transfer_id in (first, *during):
                wait_for(lambda t=transfer_id: completed(t), 15, f"transfer {transfer_id}")
    finally:
        proxy.close()

    assert stream.stats.connections >= 2
    ids = [event.id for event in handled]
    assert len(ids) == len(set(ids))
    truth = requests.get(
        f"{sandbox_url}{FUNDING_PATH}",
        params={"since_id": ids[0], "until_id": ids[-1]},
        auth=("sandbox-key", "sandbox-secret"),
        timeout=10,
    )
    replayed = [
        json.loads(line[len("data: ") :])["event_id"]
        for line in truth.text.splitlines()
        if line.startswith("data: ")
    ]
    assert ids[1:] == replayed
    assert redis_client.get(CURSOR_PREFIX + "funding").decode() == ids[-1]


def _event(event_id: str) -> str:
    return f'id: {event_id}\ndata: {{"event_id": "{event_id}", "event": "fill"}}\n\n'


class ScriptedBroker:
    """An SSE server that answers its n-th connection with ``scripts[n]`` and records each
    connection's ``since_id``; real HTTP, so the client's parsing and timeouts are real."""

    def __init__(self, *scripts) -> None:
        self.scripts = scripts
        self.since: list[str | None] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.since.append(request.query.get("since_id"))
        script = self.scripts[min(len(self.since), len(self.scripts)) - 1]
        return await script(request)

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_get(FUNDING_PATH, self.handle)
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


def sends(*chunks: str, then_wait: float = 30.0):
    async def script(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk.encode())
        await asyncio.sleep(then_wait)
        return response

    return script


def replays(*ids: str):
    """Send the events after the request's since_id, as a broker's replay does."""

    async def script(request: web.Request) -> web.StreamResponse:
        since = request.query.get("since_id")
        after = ids[ids.index(since) + 1 :] if since in ids else ids
        return await sends(*map(_event, after))(request)

    return script


async def refuses(request: web.Request) -> web.Response:
    return web.json_response({"code": 40010000, "message": "invalid since_id"}, status=400)


async def until(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_replays_after_a_slow_reader_notice_a_failure_and_silence(redis_client) -> None:
    broker = ScriptedBroker(
        sends(_event("01"), ": you are reading too slowly, dropped 2 messages\n\n"),
        sends(_event("02")),  # the handler fails on it: replay from 01
        sends(_event("02"), _event("03"), ":heartbeat\n\n"),  # then silence
        sends(_event("03"), _event("04")),  # at-least-once: 03 again
    )
    handled: list[str] = []
    failed = threading.Event()

    def handle(event: BrokerEvent) -> None:
        if event.id == "02" and not failed.is_set():
            failed.set()
            raise ConnectionError("book unavailable")
        handled.append(event.id)

    async with broker as origin:
        stream = EventStream("funding", FUNDING_PATH, handle, base_url=origin, silence_seconds=0.5)
        task = asyncio.create_task(stream.run())
        await until(lambda: handled == ["01", "02", "03", "04"])
        task.cancel()

    assert broker.since == [None, "01", "01", "03"]
    assert stream.stats.duplicates == 1 and failed.is_set()
    assert redis_client.get(CURSOR_PREFIX + "funding") == b"04"


async def test_a_poison_event_is_skipped_and_a_refused_cursor_starts_live(redis_client) -> None:
    redis_client.set(CURSOR_PREFIX + "funding", "stale")
    gaps = []
    broker = ScriptedBroker(refuses, replays("07", "08"))

    def handle(event: BrokerEvent) -> None:
        if event.id == "07":
            raise ValueError("cannot ever handle this")

    async with broker as origin:
        stream = EventStream(
            "funding",
            FUNDING_PATH,
            handle,
            on_gap=lambda: gaps.append(True),
            base_url=origin,
            max_backoff=0.05,
        )
        task = asyncio.create_task(stream.run())
        await until(lambda: stream.cursor == "08")
        task.cancel()

    assert gaps == [True] and broker.since[0] == "stale"
    assert broker.since[1:] == [None] * 5  # 07 failed four times, then was given up
    assert stream.stats.skipped == 1 and stream.stats.events == 2


def test_malformed_trade_events_are_ignored_with_an_error(redis_client, caplog) -> None:
    event = BrokerEvent("trades", str(uuid.uuid4()), {"event": "fill", "account_id": "x"})
    broker_events.handle_trade_event(event)
    assert "ignored" in caplog.text and not redis_client.keys("clera:account:*")
