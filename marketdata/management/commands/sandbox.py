"""``manage.py sandbox``: run the built-in Alpaca-compatible sandbox on loopback."""

from dataclasses import fields

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from marketdata.running import cancel_on, run_until_signalled
from marketdata.sandbox.calendar import CALENDARS
from marketdata.sandbox.faults import FaultConfig
from marketdata.sandbox.server import SandboxConfig, serve


class Command(BaseCommand):
    help = "Run the Alpaca-compatible sandbox (Broker API, events, market data) on loopback."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.SANDBOX_HOST)
        parser.add_argument("--port", type=int, default=settings.SANDBOX_PORT)
        parser.add_argument("--accounts", type=int, default=settings.SANDBOX_ACCOUNTS)
        parser.add_argument("--symbols", type=int, default=settings.SANDBOX_SYMBOLS)
        parser.add_argument(
            "--quotes-per-second", type=float, default=settings.SANDBOX_QUOTES_PER_SECOND
        )
        parser.add_argument("--seed", type=int, default=settings.SANDBOX_SEED)
        parser.add_argument(
            "--calendar",
            choices=sorted(CALENDARS),
            default="always_open",
            help="always_open (default): stocks trade at any hour; nyse: real exchange sessions",
        )
        parser.add_argument("--orders-per-minute", type=float, default=6.0)
        parser.add_argument("--iex-symbol-limit", type=int, default=30)
        parser.add_argument("--stream-connection-limit", type=int, default=1)
        parser.add_argument(
            "--rate-limited", type=float, default=0.0, help="share of REST answered 429"
        )
        parser.add_argument("--server-error", type=float, default=0.0, help="share answered 500")
        parser.add_argument("--slow", type=float, default=0.0, help="share answered slowly")
        parser.add_argument("--slow-seconds", type=float, default=3.0)

    def handle(self, *args: object, **options: object) -> None:
        config = SandboxConfig(
            **_named_fields(SandboxConfig, options),
            api_key=settings.SANDBOX_API_KEY,
            secret_key=settings.SANDBOX_SECRET_KEY,
            faults=FaultConfig(**_named_fields(FaultConfig, options)),
        )
        run_until_signalled(lambda stop: cancel_on(stop, serve(config)), "sandbox")


def _named_fields(config: type, options: dict[str, object]) -> dict[str, object]:
    """The options named like a field of the ``config`` dataclass: each option above is
    spelled as the field it sets."""
    return {field.name: options[field.name] for field in fields(config) if field.name in options}
