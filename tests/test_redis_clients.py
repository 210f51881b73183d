"""Every Redis client gives up on a Redis that does not answer within its timeouts, instead of
hanging the request, task or stream that called it until the OS gives up.

Two ways a Redis stops answering, each on a real local socket:

* unresponsive — the host accepts the connection and never replies (a hung or overloaded
  server, a half-open connection): bounded by ``REDIS_SOCKET_TIMEOUT``;
* unreachable — nothing answers the connection attempt (a blackholed address): a listener
  whose accept queue is full, so the kernel drops the handshake; bounded by
  ``REDIS_CONNECT_TIMEOUT``.

The clients are the ones the product builds from settings (tests/redis_probe.py runs them in a
fresh interpreter with ``REDIS_URL`` pointing at the socket).
"""

import socket
from collections.abc import Iterator

import pytest
from django.conf import settings

from tests.redis_probe import CLIENTS, probe

#: Seconds a client may take beyond its timeout: thread start-up and a loaded 2-core machine.
SLACK = 1.5


@pytest.fixture
def unresponsive() -> Iterator[int]:
    """A port whose connections are accepted (by the kernel) and never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


@pytest.fixture
def unreachable() -> Iterator[int]:
    """A port whose connection attempts are never answered: its accept queue is full, so
    Linux drops every further handshake as it drops packets to a blackholed address."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = []
        for _ in range(3):
            waiting = socket.socket()
            waiting.setblocking(False)
            waiting.connect_ex(("127.0.0.1", port))
            queued.append(waiting)
        with socket.socket() as late:
            late.settimeout(0.3)
            with pytest.raises(TimeoutError):
                late.connect(("127.0.0.1", port))
        try:
            yield port
        finally:
            for waiting in queued:
                waiting.close()


def assert_each_gave_up_within(results: dict[str, dict], bound: float) -> None:
    assert set(results) == set(CLIENTS)
    slow = {
        name: result
        for name, result in results.items()
        if result["ok"] or "Timeout" not in result["error"] or result["seconds"] > bound
    }
    assert slow == {}, f"clients that did not time out within {bound:g}s: {slow}"


def test_every_client_gives_up_on_a_redis_that_never_replies(unresponsive):
    results = probe(f"redis://127.0.0.1:{unresponsive}/0")

    assert_each_gave_up_within(results, settings.REDIS_SOCKET_TIMEOUT + SLACK)


def test_every_client_gives_up_on_a_redis_that_cannot_be_reached(unreachable):
    results = probe(f"redis://127.0.0.1:{unreachable}/0")

    assert_each_gave_up_within(results, settings.REDIS_CONNECT_TIMEOUT + SLACK)
