"""The quote consumer on threads in this process, against the session sandbox's real streams."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import redis
import requests
from django.conf import settings
from django.test import override_settings

from clera.devstack.embedded_redis import EmbeddedRedis
from marketdata import book
from marketdata.price_cache import PriceCache
from marketdata.quotes import LEADER_LOCK, STATUS_KEY, QuoteConsumer
from tests.realtime.conftest import now, position, wait_for

ROOT = Path(__file__).resolve().parents[2]
A, B = str(uuid.UUID(int=11)), str(uuid.UUID(int=12))


@contextlib.contextmanager
def consuming(consumer: QuoteConsumer) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), name="consumer", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(20)
        assert not thread.is_alive(), "the consumer did not stop"


def quoted_at(symbol: str):
    cached = PriceCache().get([symbol]).get(symbol)
    return cached.quote_at if cached else None


def advanced(symbol: str, since):
    def check() -> bool:
        at = quoted_at(symbol)
        return at is not None and at > since

    return check


def opened(sandbox_url: str) -> int:
    stats = requests.get(f"{sandbox_url}/_sandbox/stats", timeout=5).json()
    return stats["streams"]["connections_opened"]


def status(redis_client) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in redis_client.hgetall(STATUS_KEY).items()}


def test_follows_the_tracked_set_and_recovers_from_drops_and_silence(
    redis_client, sandbox_url
) -> None:
    option = "AAPL271218C00255000"
    book.store_collection(
        {
            A: [
                position("AAPL", "1"),
                position("AMZN", "1"),
                position(option, "1", asset_class="us_option"),
            ]
        },
        now(),
    )
    consumer = QuoteConsumer(book.TrackedSymbols(), feed="sip", silence_seconds=1.0)
    with consuming(consumer):
        wait_for(lambda: quoted_at("AAPL") and quoted_at("AMZN"), 5, "first prices")
        wait_for(lambda: status(redis_client).get("feeds") == "sip", 3, "the status")
        assert status(redis_client)["subscribed"] == "2"  # the option is not streamed

        book.apply_fill(
            book.Fill(
                B,
                "buy-googl",
                "GOOGL",
                "us_equity",
                "buy",
                Decimal(1),
                Decimal(1),
                Decimal(1),
                now(),
            )
        )
        wait_for(lambda: quoted_at("GOOGL"), 5, "the added symbol's price")

        book.store_collection({A: [position("AAPL", "1")], B: [position("GOOGL", "1")]}, now())
        wait_for(lambda: "AMZN" not in consumer.feeds["stocks"].symbols, 5, "AMZN to go")
        wait_for(advanced("AAPL", quoted_at("AAPL")), 5, "a flush after the unsubscribe")
        frozen = redis_client.hgetall("clera:price:AMZN")
        for _ in range(3):
            wait_for(advanced("AAPL", quoted_at("AAPL")), 5, "AAPL to move on")
        assert redis_client.hgetall("clera:price:AMZN") == frozen

        before, dropped_at = opened(sandbox_url), now()
        requests.post(f"{sandbox_url}/_sandbox/streams/drop", timeout=5).raise_for_status()
        wait_for(lambda: opened(sandbox_url) > before, 5, "a reconnect after the drop")
        wait_for(advanced("AAPL", dropped_at), 5, "prices after the drop")

        before, quiet_until = opened(sandbox_url), now() + timedelta(seconds=2)
        requests.post(
            f"{sandbox_url}/_sandbox/streams/silence", json={"seconds": 2}, timeout=5
        ).raise_for_status()
        wait_for(lambda: opened(sandbox_url) > before, 5, "a reconnect during the silence")
        wait_for(advanced("AAPL", quiet_until), 8, "prices after the silence")
        assert set(consumer.feeds["stocks"].symbols) == {"AAPL", "GOOGL"}
    assert not redis_client.exists(STATUS_KEY) and not redis_client.exists(LEADER_LOCK)


def test_a_symbol_limited_feed_streams_the_most_held_and_crypto_apart(redis_client) -> None:
    book.store_collection(
        {
            A: [position("AAPL", "1"), position("BTC/USD", "0.1", asset_class="crypto")],
            B: [
                position("AAPL", "2"),
                position("AMZN", "3"),
                position("ETH/USD", "1", asset_class="crypto"),
            ],
        },
        now(),
    )
    consumer = QuoteConsumer(book.TrackedSymbols(), feed="iex", symbol_limit=1)
    with consuming(consumer):
        wait_for(lambda: quoted_at("AAPL"), 5, "the most held stock's price")
        wait_for(lambda: quoted_at("BTC/USD") or quoted_at("ETH/USD"), 15, "a crypto price")
        wait_for(lambda: status(redis_client).get("feeds") == "iex,crypto", 3, "both feeds")
        assert consumer.feeds["stocks"].symbols == {"AAPL"}
        assert consumer.feeds["crypto"].symbols == {"BTC/USD", "ETH/USD"}
        assert status(redis_client)["unstreamed"] == "1" and quoted_at("AMZN") is None


@override_settings(QUOTE_LOCK_SECONDS=1.5)
def test_a_second_consumer_waits_and_takes_over(redis_client, sandbox_url) -> None:
    book.store_collection({A: [position("AAPL", "1")]}, now())
    first, second = (QuoteConsumer(book.TrackedSymbols(), feed="sip") for _ in range(2))
    with consuming(first) as stop_first:
        wait_for(first.leading.is_set, 3, "the first consumer to lead")
        wait_for(lambda: quoted_at("AAPL"), 5, "prices")
        with consuming(second):
            for _ in range(10):  # a while longer than a standby's poll (half a second)
                wait_for(advanced("AAPL", quoted_at("AAPL")), 5, "AAPL to move on")
            streams = requests.get(f"{sandbox_url}/_sandbox/stats", timeout=5).json()["streams"]
            assert streams["connections"]["sip"] == 1 and not second.leading.is_set()

            stop_first.set()
            handover = now()
            wait_for(second.leading.is_set, 5, "the standby to take over")
            wait_for(advanced("AAPL", handover), 5, "prices from the new leader")


def test_survives_redis_being_killed_and_restarted() -> None:
    server = EmbeddedRedis(port=0).start()
    try:
        with override_settings(REDIS_URL=server.url):
            book.store_collection({A: [position("AAPL", "1")]}, now())
            consumer = QuoteConsumer(book.TrackedSymbols(), feed="sip")
            with consuming(consumer):
                wait_for(lambda: quoted_at("AAPL"), 5, "prices")
                server.stop()  # every key is gone with it, the lock and the tracked set too
                restarted = now()
                server._process = subprocess.Popen(server.command(), start_new_session=True)
                server._wait_until_ready()
                wait_for(advanced("AAPL", restarted), 10, "prices in the restarted Redis")
                client = redis.Redis.from_url(server.url)
                wait_for(lambda: client.exists(LEADER_LOCK), 5, "the leader lock to be retaken")
                wait_for(lambda: client.exists(STATUS_KEY), 5, "the status to be rewritten")
                client.close()
                assert consumer.leading.is_set()
                assert book.tracked_symbols() == (set(), False)  # no collection since
    finally:
        server.stop()


def test_the_command_stops_cleanly_on_sigterm(redis_client) -> None:
    book.store_collection({A: [position("AAPL", "1")]}, now())
    env = {
        **os.environ,
        "REDIS_URL": settings.REDIS_URL,
        "ALPACA_STREAM_URL": settings.ALPACA_STREAM_URL,
        "ALPACA_DATA_FEED": "sip",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "consume_quotes"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: status(redis_client).get("feeds") == "sip", 15, "the command to stream")
        wait_for(lambda: quoted_at("AAPL"), 5, "prices")
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not redis_client.exists(STATUS_KEY) and not redis_client.exists(LEADER_LOCK)
    assert b"Traceback" not in process.stderr.read()
