"""``manage.py run_calculator``: push revalued accounts to their sockets as prices move."""

from functools import partial

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketdata.running import run_until_signalled
from realtime.calculator import run_calculator


class Command(BaseCommand):
    help = "Revalue the watched accounts that changes touch and push them (realtime/calculator.py)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--partition",
            type=int,
            default=0,
            help="which of the CALCULATOR_PARTITIONS account partitions this process owns",
        )

    def handle(self, *args: object, partition: int, **options: object) -> None:
        partitions = settings.CALCULATOR_PARTITIONS
        if not 0 <= partition < partitions:
            raise CommandError(f"--partition must be in 0..{partitions - 1}")
        run_until_signalled(
            partial(run_calculator, partition=partition, partitions=partitions), "calculator"
        )
