"""``manage.py consume_quotes``: stream the tracked symbols' trades and quotes into Redis."""

from django.core.management.base import BaseCommand

from marketdata.book import TrackedSymbols
from marketdata.quotes import QuoteConsumer
from marketdata.running import run_thread_until_signalled


class Command(BaseCommand):
    help = "Stream trades and quotes of every tracked symbol into the price cache (one leader)."

    def handle(self, *args: object, **options: object) -> None:
        run_thread_until_signalled(QuoteConsumer(TrackedSymbols()).run, "quote consumer")
