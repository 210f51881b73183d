"""The sandbox's market-data websockets, driven by the real alpaca-py streams and, where the
SDK hides the protocol (it logs errors and retries), by a raw msgpack websocket client.

Most tests use the session sandbox; the minute-bar, auth-timeout and slow-client tests run a
hub in-process so they can drive its clock and its pump directly.
"""

from __future__ import annotations

import asyncio
import json
import queue
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import msgpack
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from alpaca.data.enums import DataFeed
from alpaca.data.live.crypto import CryptoDataStream
from alpaca.data.live.stock import StockDataStream
from alpaca.data.live.websocket import DataStream
from alpaca.data.models import Bar, Quote, Trade
from django.conf import settings
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from clera.devstack.sdk_streams import StreamThread
from marketdata.sandbox.assets import build_assets
from marketdata.sandbox.calendar import NEW_YORK
from marketdata.sandbox.server import Sandbox, SandboxConfig
from tests.stack import SANDBOX_OPTIONS

UNIVERSE = [
    asset
    for asset in build_assets(SANDBOX_OPTIONS["symbols"], SANDBOX_OPTIONS["seed"])
    if asset.asset_class != "us_option"
]
STOCKS = [asset.symbol for asset in UNIVERSE if not asset.is_crypto]
PAIRS = {asset.symbol for asset in UNIVERSE if asset.is_crypto}
#: The market picks the first symbols of each asset class most often: data within a second or two.
ACTIVE = STOCKS[:4]
WAIT = 10.0  # seconds any single expectation may take
#: Message types of market data (quotes, trades, bars), as against control messages.
DATA_TYPES = ("q", "t", "b")


def credentials() -> tuple[str, str]:
    return settings.SANDBOX_API_KEY, settings.SANDBOX_SECRET_KEY


def sandbox_stats(sandbox_url: str) -> dict:
    with urllib.request.urlopen(f"{sandbox_url}/_sandbox/stats", timeout=5) as response:
        return json.load(response)["streams"]


def control(sandbox_url: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{sandbox_url}/_sandbox/{path}",
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


@pytest.fixture
def stream_origin(sandbox_url: str) -> str:
    """The ws:// origin, once no stream of an earlier test is still connected (the sandbox
    counts connections per key; a straggler would turn a first connection into a 406)."""
    deadline = time.monotonic() + WAIT
    while any(sandbox_stats(sandbox_url)["connections"].values()):
        assert time.monotonic() < deadline, "stream connections of an earlier test linger"
        time.sleep(0.05)  # no event to await across processes: bounded poll
    return sandbox_url.replace("http://", "ws://", 1)


# -- the real SDK streams ----------------------------------------------------------------------
@contextmanager
def running(stream: DataStream) -> Iterator[None]:
    thread = StreamThread(stream)
    thread.start()
    try:
        yield
    finally:
        thread.stop()


def collector() -> tuple[queue.Queue, Callable]:
    """A thread-safe inbox and the SDK handler that fills it."""
    inbox: queue.Queue = queue.Queue()

    async def handler(message: object) -> None:
        inbox.put(message)

    return inbox, handler


def take(inbox: queue.Queue, done: Callable[[list], bool]) -> list:
    """Messages from the stream thread until ``done(messages)``, within ``WAIT``."""
    messages: list = []
    deadline = time.monotonic() + WAIT
    while not done(messages):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"gave up after {len(messages)} messages"
        try:
            messages.append(inbox.get(timeout=remaining))
        except queue.Empty:
            continue
    return messages


def test_iex_stream_delivers_quotes_and_trades_of_the_subscribed_symbols(stream_origin):
    stream = StockDataStream(
        *credentials(), feed=DataFeed.IEX, url_override=f"{stream_origin}/v2/iex"
    )
    inbox, handler = collector()
    stream.subscribe_quotes(handler, *ACTIVE)
    stream.subscribe_trades(handler, *ACTIVE)
    started = datetime.now(UTC)

    with running(stream):
        messages = take(
            inbox,
            lambda seen: {type(m) for m in seen} == {Quote, Trade} and len(seen) >= 20,
        )

    assert {m.symbol for m in messages} <= set(ACTIVE)
    for message in messages:
        assert started - timedelta(seconds=1) <= message.timestamp <= datetime.now(UTC)
        if isinstance(message, Quote):
            assert 0 < message.bid_price < message.ask_price
            assert message.bid_size > 0 and message.ask_size > 0
        else:
            assert message.price > 0 and message.size > 0 and message.id


def test_crypto_stream_delivers_bitcoin_quotes(stream_origin):
    stream = CryptoDataStream(*credentials(), url_override=f"{stream_origin}/v1beta3/crypto/us")
    inbox, handler = collector()
    stream.subscribe_quotes(handler, "BTC/USD")

    with running(stream):
        messages = take(inbox, lambda seen: len(seen) >= 2)

    for quote in messages:
        assert isinstance(quote, Quote)
        assert quote.symbol == "BTC/USD"
        assert 1000 < quote.bid_price < quote.ask_price
        assert quote.bid_exchange is None  # crypto quotes carry no exchange


def test_the_sdk_reconnects_and_resubscribes_after_a_network_drop(sandbox_url, stream_origin):
    stream = StockDataStream(
        *credentials(), feed=DataFeed.SIP, url_override=f"{stream_origin}/v2/sip"
    )
    inbox, handler = collector()
    stream.subscribe_quotes(handler, *ACTIVE)

    with running(stream):
        take(inbox, lambda seen: len(seen) >= 1)
        opened = sandbox_stats(sandbox_url)["connections_opened"]
        assert control(sandbox_url, "streams/drop") == {"dropped": 1}
        dropped_at = datetime.now(UTC)
        fresh = take(inbox, lambda seen: any(q.timestamp > dropped_at for q in seen))

    assert fresh[-1].symbol in ACTIVE
    assert sandbox_stats(sandbox_url)["connections_opened"] == opened + 1


# -- the raw protocol ------------------------------------------------------------------------
class Raw:
    """A bare msgpack websocket client that can say what the SDK never would."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict | bytes | str) -> None:
        await self.ws.send(message if isinstance(message, bytes | str) else msgpack.packb(message))

    async def frame(self, timeout: float = WAIT) -> list[dict]:
        return msgpack.unpackb(await asyncio.wait_for(self.ws.recv(), timeout), timestamp=3)

    async def reply(self, message: dict | bytes | str) -> dict:
        """Send and return the single control message the server answers with. Data of the
        symbols already subscribed may come first (the stream sends it whenever it has it):
        those frames are passed over, but the answer must stand alone in its frame."""
        await self.send(message)
        while True:
            answer = await self.frame()
            if not all(item.get("T") in DATA_TYPES for item in answer):
                assert len(answer) == 1, answer
                return answer[0]

    async def authenticate(self) -> None:
        key, secret = credentials()
        answer = await self.reply({"action": "auth", "key": key, "secret": secret})
        assert answer == {"T": "success", "msg": "authenticated"}

    async def data_until(self, done: Callable[[list[dict]], bool]) -> list[dict]:
        """Data messages until ``done(messages)``, within ``WAIT``; control messages fail."""
        messages: list[dict] = []
        deadline = asyncio.get_running_loop().time() + WAIT
        while not done(messages):
            remaining = deadline - asyncio.get_running_loop().time()
            assert remaining > 0, f"gave up after {len(messages)} messages"
            for message in await self.frame(remaining):
                assert message["T"] in DATA_TYPES, message
                messages.append(message)
        return messages

    async def closed(self) -> bool:
        try:
            await asyncio.wait_for(self.ws.recv(), WAIT)
        except ConnectionClosed:
            return True
        return False


@asynccontextmanager
async def raw(origin: str, path: str, authenticated: bool = True) -> AsyncIterator[Raw]:
    async with connect(f"{origin}{path}", compression=None) as ws:
        client = Raw(ws)
        assert await client.frame() == [{"T": "success", "msg": "connected"}]
        if authenticated:
            await client.authenticate()
        yield client


def error(code: int, message: str) -> dict:
    return {"T": "error", "code": code, "msg": message}


def sdk_model(message: dict) -> Quote | Trade | Bar:
    """Parse a raw message the way the SDK does, so a field it requires cannot go missing."""
    model = {"q": Quote, "t": Trade, "b": Bar}[message["T"]]
    return model(message["S"], dict(message))


async def test_errors_before_authentication(stream_origin):
    async with raw(stream_origin, "/v2/iex", authenticated=False) as client:
        assert await client.reply({"action": "subscribe", "quotes": ["AAPL"]}) == error(
            401, "not authenticated"
        )
        assert await client.reply(b"\xc1 not msgpack") == error(400, "invalid syntax")
        assert await client.reply('{"action": "auth"}') == error(400, "invalid syntax")
        assert await client.reply({"action": "dance"}) == error(400, "invalid syntax")
        # Not ASCII either: a naive constant-time comparison would raise on it.
        assert await client.reply({"action": "auth", "key": "nöpe", "secret": "nope"}) == error(
            402, "auth failed"
        )
        assert await client.closed()


async def test_a_second_auth_is_refused_and_the_first_stands(stream_origin):
    async with raw(stream_origin, "/v2/sip") as client:
        key, secret = credentials()
        answer = await client.reply({"action": "auth", "key": key, "secret": secret})
        assert answer == error(403, "already authenticated")
        echo = await client.reply({"action": "subscribe", "quotes": ["AAPL"]})
        assert echo == {"T": "subscription", "trades": [], "quotes": ["AAPL"], "bars": []}


async def test_a_second_iex_connection_with_the_same_key_is_refused(stream_origin):
    async with raw(stream_origin, "/v2/iex") as first:
        async with raw(stream_origin, "/v2/iex", authenticated=False) as second:
            key, secret = credentials()
            answer = await second.reply({"action": "auth", "key": key, "secret": secret})
            assert answer == error(406, "connection limit exceeded")
            assert await second.closed()
        async with raw(stream_origin, "/v2/sip"):
            pass  # the limit counts per feed
        echo = await first.reply({"action": "subscribe", "trades": [ACTIVE[0]]})
        assert echo["trades"] == [ACTIVE[0]]


async def test_iex_refuses_more_symbols_than_the_plan_and_keeps_the_subscription(stream_origin):
    allowed = STOCKS[:30]
    async with raw(stream_origin, "/v2/iex") as client:
        echo = await client.reply({"action": "subscribe", "quotes": allowed, "trades": allowed[:5]})
        assert echo["quotes"] == allowed

        assert await client.reply({"action": "subscribe", "trades": [STOCKS[30]]}) == error(
            405, "symbol limit exceeded"
        )
        assert await client.reply({"action": "subscribe", "quotes": ["*"]}) == error(
            405, "symbol limit exceeded"
        )
        echo = await client.reply({"action": "unsubscribe", "quotes": [allowed[-1]]})
        assert echo == {
            "T": "subscription",
            "trades": allowed[:5],
            "quotes": allowed[:-1],
            "bars": [],
        }


async def test_each_connection_gets_only_what_it_subscribed(stream_origin):
    async with raw(stream_origin, "/v2/sip") as client, raw(stream_origin, "/v2/iex") as other:
        await other.reply({"action": "subscribe", "quotes": [ACTIVE[3]], "trades": [ACTIVE[1]]})
        echo = await client.reply(
            {
                "action": "subscribe",
                "quotes": [*ACTIVE[:3], "NOPE", "BTC/USD"],
                "trades": [ACTIVE[0]],
                "dailyBars": ["AAPL"],  # accepted, not published by the sandbox
            }
        )
        assert echo == {
            "T": "subscription",
            "trades": [ACTIVE[0]],
            "quotes": [*ACTIVE[:3], "NOPE", "BTC/USD"],
            "bars": [],
        }
        messages, others = await asyncio.gather(
            client.data_until(lambda seen: len(seen) >= 30 and any(m["T"] == "t" for m in seen)),
            other.data_until(lambda seen: len(seen) >= 10),
        )

    assert {(m["T"], m["S"]) for m in messages} <= {("q", s) for s in ACTIVE[:3]} | {
        ("t", ACTIVE[0])
    }
    assert {(m["T"], m["S"]) for m in others} <= {("q", ACTIVE[3]), ("t", ACTIVE[1])}
    for message in messages + others:
        model = sdk_model(message)
        venue = model.exchange if isinstance(model, Trade) else model.bid_exchange
        assert venue == "V"


async def test_unsubscribing_stops_a_symbol_from_the_echo_on(stream_origin):
    dropped, kept = ACTIVE[0], ACTIVE[1:]
    async with raw(stream_origin, "/v2/sip") as client:
        await client.reply({"action": "subscribe", "quotes": ACTIVE})
        await client.data_until(lambda seen: any(m["S"] == dropped for m in seen))

        await client.send({"action": "unsubscribe", "quotes": [dropped]})
        while (frame := await client.frame())[0]["T"] != "subscription":
            pass  # data published before the server read the unsubscribe
        assert frame[0]["quotes"] == kept

        after = await client.data_until(lambda seen: len(seen) >= 40)
    assert {m["S"] for m in after} <= set(kept)


async def test_the_wildcard_covers_the_feeds_own_universe(stream_origin):
    async with raw(stream_origin, "/v2/sip") as client:
        await client.reply({"action": "subscribe", "quotes": ["*"]})
        stocks = await client.data_until(lambda seen: len({m["S"] for m in seen}) >= 10)
    async with raw(stream_origin, "/v1beta3/crypto/us") as client:
        echo = await client.reply({"action": "subscribe", "quotes": ["*", ACTIVE[0]]})
        assert echo["quotes"] == ["*", ACTIVE[0]]
        pairs = await client.data_until(lambda seen: len(seen) >= 3)

    assert {m["S"] for m in stocks}.isdisjoint(PAIRS)
    assert {m["S"] for m in pairs} <= PAIRS
    assert all(set(m) == {"T", "S", "t", "bp", "bs", "ap", "as"} for m in pairs)


async def test_silence_stops_data_and_it_resumes_after(sandbox_url, stream_origin):
    quiet = timedelta(seconds=1)
    async with raw(stream_origin, "/v2/sip") as client:
        await client.reply({"action": "subscribe", "quotes": ["*"]})
        await client.data_until(lambda seen: bool(seen))
        asked = datetime.now(UTC)
        try:
            control(sandbox_url, "streams/silence", {"seconds": quiet.total_seconds()})
            answered = datetime.now(UTC)
            # Frames published before the server went silent may still be in flight.
            while (first := (await client.frame())[0]["t"]) <= answered:
                pass
        finally:
            control(sandbox_url, "streams/silence", {"seconds": 0})
    assert first >= asked + quiet


# -- in-process hub: a clock of our own ----------------------------------------------------------
@pytest.fixture
async def hub() -> AsyncIterator[tuple[Sandbox, TestClient]]:
    """A sandbox whose stream routes are served without the pump: tests call ``step``."""
    noon = datetime.combine(datetime.now(NEW_YORK).date(), clock(12), NEW_YORK)
    sandbox = Sandbox(SandboxConfig(accounts=12, symbols=40, seed=11), now=noon)
    app = web.Application()
    app.add_routes(sandbox.streams.routes())
    async with TestClient(TestServer(app)) as client:
        yield sandbox, client
        await sandbox.streams.close_all()


async def hub_session(client: TestClient, subscription: dict):
    ws = await client.ws_connect("/v2/sip")
    assert msgpack.unpackb(await ws.receive_bytes(timeout=WAIT))[0]["msg"] == "connected"
    key, secret = credentials()
    for message in ({"action": "auth", "key": key, "secret": secret}, subscription):
        await ws.send_bytes(msgpack.packb(message))
        assert msgpack.unpackb(await ws.receive_bytes(timeout=WAIT))[0]["T"] != "error"
    return ws


async def test_minute_bars_carry_the_prints_of_the_minute_that_ended(hub):
    sandbox, client = hub
    symbols = [a.symbol for a in sandbox.market.assets.values() if not a.is_crypto][:6]
    ws = await hub_session(client, {"action": "subscribe", "bars": symbols})
    started = sandbox.market.started_at.astimezone(UTC)
    minute = started.replace(second=0, microsecond=0) + timedelta(minutes=1)

    sandbox.streams.step(minute + timedelta(seconds=5), 400)
    sandbox.streams.step(minute + timedelta(seconds=61), 0)
    bars = msgpack.unpackb(await ws.receive_bytes(timeout=WAIT), timestamp=3)
    await ws.close()

    assert bars and {b["S"] for b in bars} <= set(symbols)
    session_open = sandbox.market.stock_calendar.session(minute.astimezone(NEW_YORK).date()).open
    index = int((minute - session_open).total_seconds() // 60)
    for bar in bars:
        parsed = sdk_model(bar)
        assert parsed.timestamp == minute
        first, high, low, last, volume = sandbox.market.live[bar["S"]].minutes[index]
        asset = sandbox.market.assets[bar["S"]]
        assert (parsed.open, parsed.high, parsed.low, parsed.close) == tuple(
            float(asset.to_decimal(units)) for units in (first, high, low, last)
        )
        assert parsed.volume == volume > 0


async def test_a_client_that_never_authenticates_is_told_404_and_closed(hub):
    sandbox, client = hub
    sandbox.streams.auth_timeout = 0.2
    ws = await client.ws_connect("/v2/sip")
    assert msgpack.unpackb(await ws.receive_bytes(timeout=WAIT))[0]["msg"] == "connected"
    assert msgpack.unpackb(await ws.receive_bytes(timeout=WAIT)) == [error(404, "auth timeout")]
    assert (await ws.receive(timeout=WAIT)).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)


async def test_a_client_that_does_not_read_is_told_407_and_dropped(hub):
    sandbox, client = hub
    ws = await hub_session(client, {"action": "subscribe", "quotes": ["*"]})
    start = datetime.now(UTC)

    # Without yielding to the loop nothing is written: the outbox fills as behind a stalled
    # reader, and the pump must neither block nor buffer without bound.
    for batch in range(500):
        sandbox.streams.step(start + timedelta(milliseconds=50 * batch), 20)

    assert msgpack.unpackb(await ws.receive_bytes(timeout=WAIT)) == [error(407, "slow client")]
    assert (await ws.receive(timeout=WAIT)).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert sandbox.streams.stats()["slow_clients"] == 1
    assert sandbox.streams.stats()["connections"]["sip"] == 0
