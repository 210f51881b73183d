"""The handshake gate: a storm's surplus is turned away before it costs any work."""

import asyncio

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.testing import WebsocketCommunicator

from realtime import protocol as p
from realtime.hub import HandshakeGate, hub

# Channels checks the thread's kept database connection around each consumer call.
pytestmark = pytest.mark.django_db


async def test_handshakes_beyond_the_bound_are_turned_away_before_any_work(settings) -> None:
    settings.WS_MAX_PENDING_HANDSHAKES = 1
    release = asyncio.Event()
    reached: list[str] = []

    class Slow(AsyncWebsocketConsumer):
        """Accepts, then works (here: waits) before its first frame, as a snapshot does."""

        async def connect(self) -> None:
            reached.append(self.scope["path"])
            await self.accept()
            await release.wait()
            await self.send(text_data="snapshot")

    app = HandshakeGate(Slow.as_asgi())
    first = WebsocketCommunicator(app, "/first")
    assert (await first.connect())[0]  # accepted, its first frame not sent yet

    second = WebsocketCommunicator(app, "/second")
    assert (await second.connect())[0]
    busy = await second.receive_json_from()
    assert busy["type"] == "error" and busy["code"] == "server_busy"
    assert busy["retry_after"] > 0
    closed = await second.receive_output()
    assert (closed["type"], closed["code"]) == ("websocket.close", p.TRY_AGAIN_LATER)
    assert reached == ["/first"]  # the one turned away never reached the application

    release.set()
    assert await first.receive_from() == "snapshot"  # its handshake is over: room again
    third = WebsocketCommunicator(app, "/third")
    assert (await third.connect())[0]
    assert await third.receive_from() == "snapshot"
    assert reached == ["/first", "/third"]
    for communicator in (first, third):
        await communicator.disconnect()
    assert hub().handshaking == 0
