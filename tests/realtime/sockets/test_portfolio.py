"""/ws/portfolio/<account_id> against the real ASGI app, channel layer, Redis and sandbox."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from rest_framework.test import APIClient

from clera.asgi import application
from marketdata import compat
from realtime import fanout, presence, protocol
from realtime.hub import hub

from .conftest import make_owner

pytestmark = pytest.mark.django_db(transaction=True)

CENT = Decimal("0.01")


def cents(value: Decimal) -> str:
    rounded = value.quantize(CENT, ROUND_HALF_EVEN)
    return format(rounded.copy_abs() if rounded == 0 else rounded, "f")  # never "-0.00"


def _book(raw, account_id: str) -> tuple[dict, dict[str, dict]]:
    account = raw(f"/trading/accounts/{account_id}/account")
    positions = raw(f"/trading/accounts/{account_id}/positions")
    return (
        {"cash": account["cash"], "last_equity": account["last_equity"]},
        {p["symbol"]: {k: p[k] for k in ("qty", "asset_class")} for p in positions},
    )


async def test_snapshot_on_connect_equals_a_recomputation_from_the_sandbox(connect, owner, raw):
    for _attempt in range(5):
        before = await sync_to_async(_book)(raw, owner.account_id)
        socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
        snapshot = await socket.next_of("snapshot")
        after = await sync_to_async(_book)(raw, owner.account_id)
        if before == after:  # no simulated customer traded this account meanwhile
            break
    else:
        pytest.fail("the account changed during every attempt")

    balances, positions = after
    data = snapshot["data"]
    assert snapshot["seq"] == await fanout.current_seq(owner.account_id)  # no update yet
    assert data["account_id"] == owner.account_id
    assert {h["symbol"] for h in data["holdings"]} == set(positions)
    total = Decimal(balances["cash"])
    for holding in data["holdings"]:
        held = positions[holding["symbol"]]
        multiplier = 100 if held["asset_class"] == "us_option" else 1
        value = Decimal(held["qty"]) * Decimal(holding["price"]) * multiplier
        assert Decimal(holding["qty"]) == Decimal(held["qty"])
        assert holding["market_value"] == cents(value)
        total += value
    assert data["cash"] == cents(Decimal(balances["cash"]))
    assert data["last_equity"] == cents(Decimal(balances["last_equity"]))
    assert data["total_value"] == cents(total)
    assert data["today_return"] == cents(total - Decimal(balances["last_equity"]))


async def test_pushed_updates_follow_the_snapshot_in_sequence(connect, owner):
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    snapshot = await socket.next_of("snapshot")

    seq = await fanout.publish(owner.account_id, {"total_value": "1.00"})

    update = await socket.next_of("update")
    assert update == {"type": "update", "seq": seq, "data": {"total_value": "1.00"}}
    assert seq == snapshot["seq"] + 1


async def test_numbering_after_a_lost_counter_stays_above_what_the_client_saw(
    connect, owner, redis_client
):
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    await socket.next_of("snapshot")
    for _ in range(3):
        await fanout.publish(owner.account_id, {"old": True})
        seen = (await socket.next_of("update"))["seq"]

    while time.time_ns() // 1_000_000 <= seen:  # the numbering's bound: fewer updates than ms
        await asyncio.sleep(0.001)
    redis_client.delete(fanout.SEQ_PREFIX + owner.account_id)  # as when Redis loses its data
    seq = await fanout.publish(owner.account_id, {"new": True})

    assert seq > seen  # the page drops numbers it has seen: this one it takes
    assert await socket.next_of("update") == {"type": "update", "seq": seq, "data": {"new": True}}


async def test_someone_elses_account_is_refused_4403(connect, owner, stranger):
    for account_id in (
        stranger.account_id,
        "not-an-account",
        "00000000-0000-0000-0000-000000000000",
    ):
        socket = await connect(f"/ws/portfolio/{account_id}", cookie=owner.cookie)
        code, said = await socket.closed()
        assert code == 4403
        assert said[-1]["type"] == "error" and said[-1]["code"] == "forbidden"


async def test_without_a_login_it_is_refused_4401(connect, owner):
    anonymous = await connect(f"/ws/portfolio/{owner.account_id}")
    assert (await anonymous.closed())[0] == 4401
    # A session cookie counts only from a browser: without an Origin it needs a ticket.
    no_origin = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie, origin=None)
    code, said = await no_origin.closed()
    assert code == 4401
    assert said[-1]["code"] == "not_authenticated"


async def test_an_untrusted_origin_is_refused_at_the_handshake(connect, owner, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.clera.example"]
    with pytest.raises(AssertionError, match="handshake refused"):
        await connect(
            f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie, origin="https://evil.example"
        )
    trusted = await connect(
        f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie, origin="https://app.clera.example"
    )
    assert (await trusted.next_of("snapshot"))["data"]["account_id"] == owner.account_id


async def test_a_ticket_opens_one_socket_once(connect, owner, ticket):
    issued = await sync_to_async(ticket)(owner.user)
    path = f"/ws/portfolio/{owner.account_id}?ticket={issued}"

    first = await connect(path, origin=None)
    assert (await first.next_of("snapshot"))["data"]["account_id"] == owner.account_id
    again = await connect(path, origin=None)
    assert (await again.closed())[0] == 4401


async def test_an_expired_ticket_is_refused(connect, owner, ticket, settings, redis_client):
    settings.WS_TICKET_TTL = 1
    issued = await sync_to_async(ticket)(owner.user)
    # Expiry announces itself nowhere: wait (bounded) until Redis has dropped the ticket.
    for _ in range(100):
        if not redis_client.keys("clera:ws:ticket:*"):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the ticket never expired")
    socket = await connect(f"/ws/stream?ticket={issued}", origin=None)
    assert (await socket.closed())[0] == 4401


async def test_a_ticket_for_one_account_does_not_open_another(
    connect, django_user_model, shape_account, ticket, redis_client
):
    both = await sync_to_async(make_owner)(
        django_user_model, shape_account["diversified"], shape_account["bonds"]
    )
    issued = await sync_to_async(ticket)(both.user, shape_account["bonds"])
    socket = await connect(
        f"/ws/portfolio/{shape_account['diversified']}?ticket={issued}", origin=None
    )
    assert (await socket.closed())[0] == 4403


async def test_resume_after_a_gap_gets_exactly_the_missed_updates(connect, owner):
    path = f"/ws/portfolio/{owner.account_id}"
    first = await connect(path, cookie=owner.cookie)
    seen = (await first.next_of("snapshot"))["seq"]
    await first.disconnect()

    missed = [await fanout.publish(owner.account_id, {"n": n}) for n in range(3)]

    again = await connect(f"{path}?last_seq={seen}", cookie=owner.cookie)
    got = [await again.next_of("update") for _ in missed]
    assert [(m["seq"], m["data"]) for m in got] == [(s, {"n": n}) for n, s in enumerate(missed)]
    resumed = await again.next_of("system")
    assert resumed["seq"] == missed[-1]

    # The same in the middle of a connection, from the second of them.
    await again.send({"type": "resume", "last_seq": missed[1]})
    assert (await again.next_of("update"))["seq"] == missed[2]
    assert (await again.next_of("system"))["seq"] == missed[2]


async def test_resume_from_too_long_ago_gets_a_fresh_snapshot(connect, owner, settings):
    settings.UPDATE_HISTORY_LENGTH = 3
    numbers = [await fanout.publish(owner.account_id, {"n": n}) for n in range(6)]

    socket = await connect(
        f"/ws/portfolio/{owner.account_id}?last_seq={numbers[0]}", cookie=owner.cookie
    )
    snapshot = await socket.next_of("snapshot")
    assert snapshot["seq"] == numbers[-1]
    assert snapshot["data"] == {"n": 5}  # the state kept with the newest update

    never = numbers[-1] + 93  # a number this account never had
    await fanout.forget_states([owner.account_id])  # as when nobody watched it for a while
    await socket.send({"type": "resume", "last_seq": never})
    fresh = await socket.next_of("snapshot")
    assert fresh["seq"] == numbers[-1]
    assert fresh["data"]["account_id"] == owner.account_id  # valued afresh


class SlowTransport:
    """The network to a client that stops reading: sends block while the gate is shut (the
    one part here that is not real — a slow peer cannot be made otherwise in-process)."""

    def __init__(self, app) -> None:
        self.app = app
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, scope, receive, send):
        async def slow_send(message):
            if message["type"] == "websocket.send":
                await self.gate.wait()
            await send(message)

        return await self.app(scope, receive, slow_send)


async def test_a_slow_client_holds_only_the_newest_update(connect, owner):
    transport = SlowTransport(application)
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie, app=transport)
    await socket.next_of("snapshot")
    consumer = next(iter(hub().sockets.values()))

    transport.gate.clear()
    numbers = [await fanout.publish(owner.account_id, {"n": n}) for n in range(300)]
    for _ in range(200):  # the consumer drains its group messages; nothing announces the last
        if consumer.seq == numbers[-1]:
            break
        await asyncio.sleep(0.05)
    assert consumer.seq == numbers[-1]
    assert len(consumer.outbox) == 1  # the newest update; the first is stuck in the transport

    transport.gate.set()
    first, last = await socket.next_of("update"), await socket.next_of("update")
    assert (first["seq"], last["seq"]) == (numbers[0], numbers[-1])
    assert last["data"] == {"n": 299}


async def test_a_slow_client_gets_its_unsent_partial_updates_merged(connect, owner):
    transport = SlowTransport(application)
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie, app=transport)
    await socket.next_of("snapshot")
    consumer = next(iter(hub().sockets.values()))
    whole = {"total_value": "1.00", "cash": "1.00", "holdings": [{"symbol": "A", "price": "1"}]}
    await fanout.publish(owner.account_id, whole)
    await socket.next_of("update")

    transport.gate.clear()
    steps = [
        ({"total_value": "2.00"}, {"symbol": "A", "price": "2"}),
        ({"cash": "3.00"}, None),
        ({"total_value": "4.00"}, None),
    ]
    state = whole
    for n, (figures, holding) in enumerate(steps):
        partial = {"partial": True, **figures, **({"holdings": [holding]} if holding else {})}
        state = protocol.apply(state, partial)
        seq = await fanout.publish(owner.account_id, partial)
        if n == 0:  # the first one is stuck in the transport; the others wait, merged
            while consumer.seq != seq:
                await asyncio.sleep(0.01)
    while consumer.seq != seq:
        await asyncio.sleep(0.01)
    assert len(consumer.outbox) == 1

    transport.gate.set()
    client = whole
    for _ in range(2):
        client = protocol.apply(client, (await socket.next_of("update"))["data"])
    assert (
        client
        == state
        == {
            "total_value": "4.00",
            "cash": "3.00",
            "holdings": [{"symbol": "A", "price": "2"}],
        }
    )


async def test_an_update_that_never_arrived_is_sent_from_the_history(connect, owner):
    """Pub/sub delivers at most once: a partial update must not be applied past a lost one."""
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    await socket.next_of("snapshot")
    whole = {"total_value": "1.00", "cash": "1.00", "holdings": []}
    first = await fanout.publish(owner.account_id, whole)
    assert (await socket.next_of("update"))["seq"] == first
    lost = {"partial": True, "cash": "2.00"}  # numbered and kept, never published
    await fanout.number_updates({owner.account_id: json.dumps(lost)})
    last = await fanout.publish(owner.account_id, {"partial": True, "total_value": "3.00"})

    update = await socket.next_of("update")  # the two, merged: nothing is skipped
    assert update["seq"] == last
    assert protocol.apply(whole, update["data"]) == {**whole, "cash": "2.00", "total_value": "3.00"}


async def test_event_channels_are_forwarded_only_once_subscribed(connect, owner):
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    await socket.next_of("snapshot")
    await socket.send({"type": "subscribe", "channels": ["orders"]})
    assert (await socket.next_of("system"))["channels"] == ["orders"]

    await fanout.push_events({(owner.account_id, "positions"): [{"symbol": "AAPL"}]})
    await fanout.push_events({(owner.account_id, "orders"): [{"id": "o-1"}]})

    # In order on one group: had the positions batch been forwarded, it would come first.
    assert await socket.next_of("orders") == {"type": "orders", "events": [{"id": "o-1"}]}

    await socket.send({"type": "subscribe", "channels": ["carrier-pigeon"]})
    assert (await socket.next_of("error"))["code"] == "unknown_channel"


async def test_a_live_socket_makes_its_account_present_until_it_closes(connect, owner):
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    await socket.next_of("snapshot")
    assert await presence.alive([owner.account_id]) == {owner.account_id}

    await socket.disconnect()
    assert await presence.alive([owner.account_id]) == set()


async def test_switched_off_sockets_are_refused_4503_while_rest_works(connect, owner, settings):
    settings.ENABLE_REALTIME_PORTFOLIO = False
    for path in (f"/ws/portfolio/{owner.account_id}", "/ws/stream"):
        socket = await connect(path, cookie=owner.cookie)
        code, said = await socket.closed()
        assert code == 4503
        assert said[-1]["code"] == "realtime_disabled"

    summary = await sync_to_async(_summary)(owner)
    assert summary.status_code == 200
    assert summary.json()["account_id"] == owner.account_id


def _summary(owner):
    client = APIClient()
    client.force_authenticate(owner.user)
    return client.get("/api/portfolio/summary")


async def test_an_unknown_path_says_so(connect, owner):
    socket = await connect("/ws/nowhere", cookie=owner.cookie)
    code, said = await socket.closed()
    assert code == 4404
    assert said[-1]["code"] == "not_found"


async def test_a_ticket_carries_its_users_rights_only(connect, owner, stranger, ticket):
    issued = await sync_to_async(ticket)(stranger.user)
    socket = await connect(f"/ws/portfolio/{owner.account_id}?ticket={issued}", origin=None)
    assert (await socket.closed())[0] == 4403


async def test_a_socket_that_stops_as_a_message_arrives_leaves_no_subscription(
    connect, owner, redis_client
):
    """A message and the disconnect ready in the same turn: channels' dispatch loop stops on
    the disconnect with the channel's receive already complete, so channels-redis never
    unsubscribes; the consumer does (the soak saw such channels pile up)."""
    layer = get_channel_layer()
    before = set(redis_client.pubsub_channels("asgi*specific*"))
    socket = await connect(f"/ws/portfolio/{owner.account_id}", cookie=owner.cookie)
    await socket.next_of("snapshot")
    [channel] = set(redis_client.pubsub_channels("asgi*specific*")) - before
    queue = compat.pubsub_loop_layer(layer).channels[channel.decode()]

    queue.put_nowait(layer.serialize({"type": "portfolio.update", "seq": 1, "data": {}}))
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
    await socket.wait(timeout=10)

    assert channel not in set(redis_client.pubsub_channels("asgi*specific*"))
    assert channel.decode() not in compat.pubsub_loop_layer(layer).channels
