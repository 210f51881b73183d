"""The exchange's to-do list: actions due at a moment, run in due order by one loop.

Order acknowledgements and fills (:mod:`.exchange`) and funding steps (:mod:`.funding`) each
come a random delay after what caused them; the delay is drawn from the seeded stream the
scheduler is given, and the action is called with the moment the loop ran it. A failing action
is logged and the rest still run.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

logger = logging.getLogger(__name__)


@dataclass(order=True)
class _Task:
    due: datetime
    seq: int
    action: Callable[[datetime], None] = field(compare=False)


class Scheduler:
    """A heap of due actions; ties run in the order they were scheduled."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seq = itertools.count()
        self._tasks: list[_Task] = []

    def __len__(self) -> int:
        return len(self._tasks)

    def after(
        self, start: datetime, delay: tuple[float, float], action: Callable[[datetime], None]
    ) -> None:
        """Run ``action`` a uniformly random ``delay`` (low, high seconds) after ``start``."""
        due = start + timedelta(seconds=self._rng.uniform(*delay))
        heapq.heappush(self._tasks, _Task(due, next(self._seq), action))

    def run_due(self, now: datetime) -> None:
        """Run every action due by ``now``, earliest first."""
        while self._tasks and self._tasks[0].due <= now:
            task = heapq.heappop(self._tasks)
            try:
                task.action(now)
            except Exception:
                logger.exception("exchange action %r failed", task.action)
