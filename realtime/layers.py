"""The channel layer: channels-redis's pub/sub layer, plus one batched ``group_send_many`` and
the cleanup of a stopped consumer's channel (:meth:`PubSubChannelLayer.discard_channel`).

Why the pub/sub layer (measured in ``bench/channel_layers.py``, figures in BENCHMARKS.md): a
``group_send`` on it is one ``PUBLISH``, where the classic ``RedisChannelLayer`` makes several
round trips and a Lua call per member. Its cost: delivery is at most once — a daphne process
that is reconnecting to Redis misses what was published meanwhile. Every portfolio update
carries a sequence number: a consumer that receives one past a gap sends the missing ones
from the account's kept history first (or a snapshot), so a partial update is never applied
past a lost one (``realtime.consumers``, ``_fill_gap``).

Even so, one ``PUBLISH`` per round trip caps a single process at a few thousand sends a second,
and gathering does not help: the layer serialises publishes per Redis host behind one lock.
:meth:`PubSubChannelLayer.group_send_many` sends any number of group messages in one pipelined
round trip per host, the same bytes ``group_send`` would publish (same channel names, same
serializer), so receivers cannot tell the difference. It relies on the layer's internals
(the group's channel name, its shard, the shard's lock and client), reached only through
:mod:`marketdata.compat`; tests/realtime/test_fanout.py proves it against real group members.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from channels_redis.pubsub import RedisPubSubChannelLayer

from marketdata import compat


class PubSubChannelLayer(RedisPubSubChannelLayer):
    """``RedisPubSubChannelLayer`` with :meth:`group_send_many` and :meth:`discard_channel`."""

    async def discard_channel(self, channel: str) -> None:
        """Unsubscribe a consumer's own channel once the consumer has stopped.

        channels-redis unsubscribes only when a *pending* receive is cancelled. When a message
        and the disconnect complete in the same turn of channels' ``await_many_dispatch``, the
        receive has already returned, nothing is cancelled and the channel stays subscribed
        for the life of the process: bench.soak saw one in fifteen departures leak so under
        load. Safe to call when channels-redis did clean up (it is then a no-op).
        """
        layer = compat.pubsub_loop_layer(self)
        if compat.forget_channel(layer, channel):
            await compat.shard_for(layer, channel).unsubscribe(channel)

    async def group_send_many(self, messages: Iterable[tuple[str, dict]]) -> None:
        """``group_send`` every ``(group, message)``, one pipelined round trip per host."""
        layer = compat.pubsub_loop_layer(self)
        by_shard = defaultdict(list)
        for group, message in messages:
            channel = compat.group_channel_name(layer, group)
            by_shard[compat.shard_for(layer, channel)].append((channel, self.serialize(message)))
        for shard, items in by_shard.items():
            async with compat.shard_client(shard) as client:
                pipe = client.pipeline(transaction=False)
                for channel, data in items:
                    pipe.publish(channel, data)
                await pipe.execute()
