"""Presence on real Redis: which accounts have a live socket, across processes."""

import time

import pytest

from realtime import presence
from tests.realtime.conftest import wait_for


def test_an_account_is_live_while_any_of_its_sockets_is(redis_client) -> None:
    presence.join("acct-a", "conn-1")
    presence.join("acct-a", "conn-2")
    presence.join("acct-b", "conn-3")

    assert presence.live(["acct-a", "acct-b", "acct-c"]) == {"acct-a", "acct-b"}
    assert presence.live_accounts() == {"acct-a", "acct-b"}

    presence.leave("acct-a", "conn-1")
    assert presence.live(["acct-a"]) == {"acct-a"}

    presence.leave("acct-a", "conn-2")
    assert presence.live(["acct-a", "acct-b"]) == {"acct-b"}
    assert presence.live_accounts() == {"acct-b"}
    assert not redis_client.exists(presence.presence_key("acct-a"))


def test_leaving_twice_or_unknown_sockets_change_nothing(redis_client) -> None:
    presence.join("acct-a", "conn-1")
    presence.leave("acct-a", "conn-unknown")
    presence.leave("acct-b", "conn-1")
    assert presence.live(["acct-a", "acct-b"]) == {"acct-a"}
    assert presence.live([]) == set()


def test_entries_expire_unless_refreshed(redis_client, settings) -> None:
    """A crashed process never leaves: its sockets must vanish after PRESENCE_TTL."""
    settings.PRESENCE_TTL = 0.4
    presence.join("acct-crashed", "conn-1")
    presence.join("acct-alive", "conn-2")
    assert presence.live(["acct-crashed", "acct-alive"]) == {"acct-crashed", "acct-alive"}

    deadline = time.monotonic() + 5

    def only_the_refreshed_one_is_live() -> bool:
        assert time.monotonic() < deadline
        presence.refresh("acct-alive", "conn-2")  # the live process's heartbeat
        return presence.live(["acct-crashed", "acct-alive"]) == {"acct-alive"}

    wait_for(only_the_refreshed_one_is_live, timeout=5, what="the crashed socket to expire")
    assert presence.live_accounts() == {"acct-alive"}


def test_the_index_keeps_the_latest_expiry_of_the_remaining_sockets(redis_client, settings):
    settings.PRESENCE_TTL = 60
    presence.join("acct-a", "long")
    settings.PRESENCE_TTL = 0.3
    presence.join("acct-a", "short")
    presence.leave("acct-a", "short")
    score = redis_client.zscore(presence.PRESENCE_INDEX, "acct-a")
    assert score == pytest.approx(time.time() + 60, abs=5)


async def test_async_variants_share_the_same_state(redis_client) -> None:
    await presence.ajoin("acct-a", "conn-1")
    assert presence.live(["acct-a"]) == {"acct-a"}
    assert await presence.alive(["acct-a", "acct-b"]) == {"acct-a"}
    await presence.arefresh_many([("acct-a", "conn-1")])
    assert await presence.alive_accounts() == {"acct-a"}
    await presence.aleave("acct-a", "conn-1")
    assert await presence.alive(["acct-a"]) == set()


async def test_many_connections_join_and_leave_in_one_call(redis_client) -> None:
    """A heartbeat renews, and a drain gives back, every socket of a process at once: each
    account stays live exactly while one of its own connections does."""
    sockets = [("acct-a", "conn-1"), ("acct-a", "conn-2"), ("acct-b", "conn-3")]
    await presence.arefresh_many([*sockets, ("acct-c", "conn-4")])
    assert await presence.alive_accounts() == {"acct-a", "acct-b", "acct-c"}
    assert redis_client.zcard(presence.presence_key("acct-a")) == 2

    await presence.aleave_many([("acct-a", "conn-1"), ("acct-b", "conn-3"), ("acct-c", "x")])
    assert await presence.alive_accounts() == {"acct-a", "acct-c"}
    assert redis_client.zrange(presence.presence_key("acct-a"), 0, -1) == [b"conn-2"]
    assert not redis_client.exists(presence.presence_key("acct-b"))
    await presence.aleave_many([])  # nothing to do: no call
