"""``manage.py consume_events``: apply the broker's trade and funding events to the book."""

from django.core.management.base import BaseCommand

from marketdata.running import cancel_on, run_until_signalled
from realtime.broker_events import consume_events


class Command(BaseCommand):
    help = "Follow Alpaca's trade and funding event streams into the account book (Redis)."

    def handle(self, *args: object, **options: object) -> None:
        run_until_signalled(lambda stop: cancel_on(stop, consume_events()), "event consumer")
