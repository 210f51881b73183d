"""Long-running management commands: run a coroutine until SIGINT or SIGTERM."""

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


def run_until_signalled(main: Coroutine[Any, Any, None], name: str) -> None:
    """Run ``main`` on a fresh loop; SIGINT/SIGTERM cancel it so its cleanup runs."""

    async def supervise() -> None:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            logger.info("%s stopped", name)

    asyncio.run(supervise())
