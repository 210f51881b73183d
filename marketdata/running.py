"""Long-lived management commands run until SIGINT or SIGTERM, whichever way they stop.

The one place that turns those signals into a stop. The command is handed a stop event and
decides what stopping means: the calculator finishes its pass and flushes
(:func:`run_until_signalled`), a server or stream follower that only ends when cancelled is
cancelled so its cleanup runs (:func:`cancel_on`), and threaded work watches a
``threading.Event`` (:func:`run_thread_until_signalled`). "<name> stopped" is logged once
the command has returned; a command that fails raises.

**Garbage collection** (:func:`settle`): what a long-lived process loads at start — Django, the
SDK, the maths libraries: some 230,000 objects in a web process — never becomes garbage, yet
CPython's full collections walk it every few seconds under load. bench.sockets e2e saw daphne
stop for 260–520 ms each time (gc callbacks), every client's update waiting behind it. So
once started, a process freezes those objects out of the collector's way (``gc.freeze``), and
collects its youngest generation every :data:`YOUNG_COLLECTION_OBJECTS` allocations instead
of 700, so fewer short-lived messages in flight outlive a collection and pile up for a full one.
Reference counting still frees everything that is not in a cycle at once.
"""

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from contextlib import suppress

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Allocations between two collections of the youngest generation (CPython's default: 700).
YOUNG_COLLECTION_OBJECTS = 10_000


def settle() -> None:
    """Start-up is over: keep what is loaded out of every later collection (see the module
    docstring). Called again, it freezes what was loaded since."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_OBJECTS, older, oldest)
    gc.freeze()


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]], name: str) -> None:
    """Run ``main(stop)`` on a fresh loop until it returns; SIGINT/SIGTERM set ``stop``."""

    async def supervise() -> None:
        settle()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(supervise())
    logger.info("%s stopped", name)


async def cancel_on(stop: asyncio.Event, work: Awaitable[None]) -> None:
    """Await ``work`` until it ends or ``stop`` is set, then cancel it (its ``finally`` blocks
    run); an error of its own is raised."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def run_thread_until_signalled(main: Callable[[threading.Event], None], name: str) -> None:
    """Run ``main(stop)`` on this (the main) thread; SIGINT/SIGTERM set ``stop``."""
    stop = threading.Event()
    for sig in SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    settle()
    main(stop)
    logger.info("%s stopped", name)
