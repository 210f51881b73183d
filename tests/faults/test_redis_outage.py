"""Redis killed under a running application and restarted empty, as a crashed cache comes back.

What the investor sees: the REST reads keep answering (from the broker) while Redis is away;
what truly needs Redis (a ticket for a new socket) is a 503 with Retry-After; the open socket
stays open and, within 5 s of Redis's return, carries values again — numbered above what it
had, so the page takes them, and true on their face."""

from __future__ import annotations

import asyncio
import time

from tests.faults.live import consistent

#: What the page reads over REST.
READS = (
    "/api/portfolio/summary",
    "/api/portfolio/positions",
    "/api/portfolio/history?period=1M",
)
#: The issue's bound: live values again this long after Redis is back.
RECOVERY_SECONDS = 5.0


async def test_redis_killed_and_restarted_empty(live, investor):
    socket = await investor.watch()
    await socket.next_of("snapshot", timeout=30)
    _, before = await socket.next_of("update", timeout=30)  # the live path runs
    consistent(before["data"])

    live.redis.kill()
    for path in READS:
        answer = await investor.get(path)
        assert answer.status == 200, (path, answer.status, answer.body)
    ticket = await investor.ticket()
    assert ticket.status == 503, ticket
    assert ticket.body["error"]["code"] == "realtime_unavailable"
    assert int(ticket.headers["Retry-After"]) >= 1

    live.redis.revive()
    back = time.monotonic()
    arrived, after = await socket.next_of("update", timeout=30)
    assert arrived - back <= RECOVERY_SECONDS, f"live again after {arrived - back:.1f}s"
    assert after["seq"] > before["seq"]
    consistent(after["data"])
    assert after["data"]["holdings"]  # the rebuilt book has the account's positions
    for path in READS:
        assert (await investor.get(path)).status == 200
    assert (await investor.ticket()).status == 201


async def test_the_first_socket_after_a_restart_opens(live, investor):
    """With no socket open, nothing reads the channel layer's pub/sub connection: it is still
    the dead one when the next socket subscribes (its handshake was a 500)."""
    await (await investor.watch()).next_of("snapshot", timeout=30)
    await investor.close()
    redis = live.redis.client()
    deadline = time.monotonic() + 10
    while redis.pubsub_channels("asgi*specific*"):  # the server let go of the socket
        assert time.monotonic() < deadline, "the closed socket's channel is still subscribed"
        await asyncio.sleep(0.05)
    live.redis.kill()
    live.redis.revive()

    socket = await investor.watch()
    await socket.next_of("snapshot", timeout=30)
