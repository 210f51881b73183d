"""Every Redis client a deployed process builds, each used once against ``REDIS_URL``.

:func:`probe` runs this module (``python -m tests.redis_probe``) in a fresh interpreter with
the environment under test, so the clients come from settings exactly as ``bin/run``'s
processes build them: nothing here passes a connection option. Each client runs in a thread of
its own, all at once; the child prints one JSON line, per client ``{"ok", "error", "seconds"}``,
and exits without waiting for a client still stuck after ``DEADLINE`` (reported as ``"hung"``).

Used by tests/test_redis_clients.py (a Redis that never answers: each must give up in seconds)
and tests/test_redis_tls.py (AUTH over TLS: each must round-trip). The clients import the
product when they run, in the child: importing this module sets nothing up.
"""

import asyncio
import importlib
import inspect
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Seconds after which a client that has neither answered nor failed counts as hung.
DEADLINE = 15.0
KEY = f"clera-probe:{uuid.uuid4().hex}"


def probe(redis_url: str, **env: str) -> dict[str, dict]:
    """Use every product Redis client once against ``redis_url`` in a fresh interpreter whose
    environment is only ``env`` (the test run's Redis, keys and overrides stay out)."""
    clean_env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": "sqlite:///:memory:",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "REDIS_URL": redis_url,
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.redis_probe"],
        cwd=ROOT,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=DEADLINE + 30,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def django_cache() -> None:
    from django.core.cache import cache

    cache.set(KEY, "cached", 30)
    assert cache.get(KEY) == "cached"


async def channel_layer() -> None:
    """A group message through ``group_send`` and one through our pipelined
    ``group_send_many`` (realtime/layers.py), both received by a group member."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    try:
        await layer.group_add(KEY, channel)
        await layer.group_send(KEY, {"type": "probe", "n": 1})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 1
        await layer.group_send_many([(KEY, {"type": "probe", "n": 2})])
        assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 2
    finally:
        await layer.flush()


def celery_broker() -> None:
    """What a worker or beat needs at start (its result backend, one broker connection
    attempt), then a message through the broker's transport and back."""
    from celery_app import app

    assert app.backend is not None
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=0)
        queue = connection.SimpleQueue(f"{KEY}:queue")
        try:
            queue.put({"n": 1})
            message = queue.get(timeout=5)
            message.ack()
            assert message.payload == {"n": 1}
        finally:
            queue.close()


def store() -> None:
    """marketdata.store's shared client: the price cache, book, presence, tickets, stats,
    the quote and event consumers."""
    from marketdata.store import redis_client

    client = redis_client()
    client.set(KEY, "stored", ex=30)
    assert client.get(KEY) == b"stored"


async def async_store() -> None:
    """marketdata.store's asyncio client: the calculator, trade events, the price cache's
    async reads."""
    from marketdata.store import async_redis_client

    client = async_redis_client()
    try:
        await client.set(KEY, "stored", ex=30)
        assert await client.get(KEY) == b"stored"
    finally:
        await client.aclose()


async def loop_shared() -> None:
    """realtime.redis_loop's per-loop client: the sockets' hub, fan-out and price feed."""
    from realtime.redis_loop import forget_loop_client, loop_client

    try:
        assert await loop_client().ping()
    finally:
        await forget_loop_client()


def health_check() -> None:
    from django.test import RequestFactory

    from clera.health import health

    checks = json.loads(health(RequestFactory().get("/health")).content)["checks"]
    assert checks["redis"] == "ok", checks


CLIENTS: dict[str, Callable] = {
    "cache": django_cache,
    "channel_layer": channel_layer,
    "celery_broker": celery_broker,
    "store": store,
    "async_store": async_store,
    "loop_client": loop_shared,
    "health": health_check,
}

#: What the clients import, imported before any runs.
WARM_UP = (
    "celery_app", "channels.layers", "clera.health", "django.core.cache", "django.test",
    "marketdata.store", "realtime.redis_loop",
)  # fmt: skip


def _use(name: str, client: Callable, results: dict[str, dict]) -> None:
    started = time.monotonic()
    try:
        if inspect.iscoroutinefunction(client):
            asyncio.run(client())
        else:
            client()
    except Exception as error:
        outcome = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    else:
        outcome = {"ok": True, "error": None}
    results[name] = {**outcome, "seconds": round(time.monotonic() - started, 3)}


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clera.settings")
    django.setup()
    for module in WARM_UP:  # so no client's seconds include an import
        importlib.import_module(module)
    results: dict[str, dict] = {}
    threads = [
        threading.Thread(target=_use, args=(name, client, results), daemon=True)
        for name, client in CLIENTS.items()
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    finished = dict(results)  # a hung client's thread may still write to results
    for name in CLIENTS:
        finished.setdefault(name, {"ok": False, "error": "hung", "seconds": DEADLINE})
    print(json.dumps(finished), flush=True)
    os._exit(0)  # a hung client's thread must not keep the probe alive


if __name__ == "__main__":
    main()
