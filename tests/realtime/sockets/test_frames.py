"""Bad frames, floods and heartbeats: a client hears what is wrong, never a traceback, and one
that goes on is closed (1008); a silent one is closed (4408)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clera.asgi import application
from realtime import presence

from .conftest import ORIGIN, Socket

pytestmark = pytest.mark.django_db(transaction=True)

SERVER_TYPES = {"error", "heartbeat", "system", "ping", "price_update", "snapshot", "update"}


async def test_each_kind_of_bad_frame_gets_its_error(connect, owner, settings):
    settings.WS_MAX_MESSAGE_BYTES = 200
    socket = await connect("/ws/stream", cookie=owner.cookie)

    await socket.send_to(text_data="{not json")
    assert (await socket.next_of("error"))["code"] == "invalid_json"
    await socket.send([1, 2])
    assert (await socket.next_of("error"))["code"] == "invalid_message"
    await socket.send({"type": "teleport"})
    unknown = await socket.next_of("error")
    assert unknown["code"] == "unknown_type"
    assert "subscribe" in unknown["allowed"]
    await socket.send_to(bytes_data=b"\x00\x01")
    assert (await socket.next_of("error"))["code"] == "binary_frame"

    # Four strikes so far; anything valid still works.
    await socket.send({"type": "heartbeat", "timestamp": "2026-01-27T12:34:56Z"})
    pong = await socket.next_of("heartbeat")
    assert pong["message"] == "pong" and isinstance(pong["server_time"], float)

    await socket.send({"type": "subscribe", "symbols": ["A" * 10] * 40})
    assert (await socket.next_of("error"))["code"] == "message_too_large"
    code, said = await socket.closed()
    assert code == 1008
    assert said[-1]["code"] == "policy_violation"


async def test_a_flood_is_answered_once_a_second_then_closed_if_it_goes_on(
    connect, owner, settings
):
    settings.WS_MAX_MESSAGES_PER_SECOND = 5
    settings.WS_MAX_BAD_FRAMES = 2
    socket = await connect("/ws/stream", cookie=owner.cookie)

    for _ in range(30):
        await socket.send({"type": "heartbeat"})
    replies = []
    while len(replies) < 6:
        replies.append(await socket.next())
    assert [r["type"] for r in replies].count("heartbeat") == 5
    assert replies[-1]["code"] == "rate_limited"

    # Keep flooding: one strike a second, and WS_MAX_BAD_FRAMES (2) strikes close it.
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        await socket.send({"type": "heartbeat"})
        if not await socket.receive_nothing(timeout=0.01):
            output = await socket.receive_output()
            if output["type"] == "websocket.close":
                assert output["code"] == 1008
                return
    pytest.fail("a client that kept flooding was never closed")


async def test_the_server_pings_and_closes_a_silent_client(connect, owner, settings):
    settings.WS_HEARTBEAT_INTERVAL = 0.2
    settings.WS_HEARTBEAT_TIMEOUT = 0.7
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    assert (await socket.next())["type"] == "snapshot"

    ping = await socket.next()
    assert ping["type"] == "ping" and isinstance(ping["server_time"], float)
    await socket.send({"type": "pong"})
    assert await presence.alive([owner.account_id]) == {owner.account_id}

    code, said = await socket.closed()  # and now it stays silent
    assert code == 4408
    assert said[-1]["code"] == "heartbeat_timeout"
    assert await presence.alive([owner.account_id]) == set()


async def _fuzz(cookie: str, frames: list[str | bytes], max_bad: int) -> None:
    socket = Socket(
        application,
        "/ws/stream",
        headers=[(b"origin", ORIGIN.encode()), (b"cookie", f"sessionid={cookie}".encode())],
    )
    connected, _ = await socket.connect(timeout=10)
    assert connected
    for frame in frames:
        if isinstance(frame, bytes):
            await socket.send_to(bytes_data=frame or b"\x00")
        else:
            await socket.send_to(text_data=frame or " ")
    await socket.send({"type": "heartbeat"})
    errors = 0
    while True:
        output = await socket.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            assert output["code"] == 1008
            assert errors >= max_bad  # closed only after that many answered bad frames
            break
        text = output["text"]
        assert "Traceback" not in text
        message = json.loads(text)
        assert message["type"] in SERVER_TYPES
        if message["type"] == "error":
            assert isinstance(message["code"], str) and isinstance(message["message"], str)
            errors += 1
        if message["type"] == "heartbeat":  # the last frame's answer: everything was read
            break
    await socket.disconnect()


frames = st.lists(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=100),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=10,
        ).map(json.dumps),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["subscribe", "unsubscribe", "heartbeat", "pong", "resume"])},
            optional={
                "symbols": st.lists(st.text(max_size=12), max_size=5) | st.integers(),
                "channels": st.lists(st.text(max_size=12), max_size=3),
                "last_seq": st.integers() | st.text(max_size=3),
            },
        ).map(json.dumps),
    ),
    min_size=1,
    max_size=8,
)


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=frames)
def test_random_frames_never_crash_the_consumer(owner, frames):
    """Whatever arrives, the consumer answers in its protocol (or closes with 1008 once it had
    enough bad frames) and is still there to answer the heartbeat that follows."""
    async_to_sync(_fuzz)(owner.cookie, frames, max_bad=5)
