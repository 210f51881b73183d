"""The one retry schedule: wait ``first`` seconds, doubling each failure up to ``maximum``.

Every loop that retries after a failure (quote writes, the broker event stream, the
calculator, the socket price relay) takes its delays from a :class:`Backoff` and waits in its
own way (``asyncio``, a thread's stop event); a success calls :meth:`Backoff.reset`. Loops
that wait for Redis cap their delays at :data:`REDIS_MAX_BACKOFF`.
"""

from __future__ import annotations

import asyncio
import contextlib

#: Longest wait between two attempts to reach Redis: it is ours, on our network, and cheap to
#: try, and every loop that waits on it must notice its return within a second or two (live
#: values are back within seconds of a Redis restart). The broker, which rate-limits us, keeps
#: the long default.
REDIS_MAX_BACKOFF = 1.0


class Backoff:
    """Delays between retries: ``first``, doubling after each failure, at most ``maximum``."""

    def __init__(self, first: float = 0.5, maximum: float = 10.0) -> None:
        self.first = first
        self.maximum = maximum
        self.seconds = min(first, maximum)

    def reset(self) -> None:
        """After a success: the next failure waits ``first`` again."""
        self.seconds = min(self.first, self.maximum)

    def next(self) -> float:
        """The delay before this retry; the one after it is twice as long (capped)."""
        delay = self.seconds
        self.seconds = min(self.seconds * 2, self.maximum)
        return delay

    async def sleep(self, stop: asyncio.Event | None = None) -> None:
        """Wait this retry's delay in a coroutine, or less if ``stop`` is set meanwhile."""
        delay = self.next()
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
