"""``manage.py consume_events``: apply the broker's trade and funding events to the book."""

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand

from realtime.services import consume_events

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Follow Alpaca's trade and funding event streams into the account book (Redis)."

    def handle(self, *args: object, **options: object) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        task = asyncio.create_task(consume_events())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            logger.info("event consumer stopped")
