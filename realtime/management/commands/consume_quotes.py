"""``manage.py consume_quotes``: stream the tracked symbols' trades and quotes into Redis."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand

from marketdata.book import TrackedSymbols
from marketdata.quotes import QuoteConsumer

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Stream trades and quotes of every tracked symbol into the price cache (one leader)."

    def handle(self, *args: object, **options: object) -> None:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        QuoteConsumer(TrackedSymbols()).run(stop)
        logger.info("quote consumer stopped")
