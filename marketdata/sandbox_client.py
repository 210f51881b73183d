"""Calls to the built-in sandbox's private `/_sandbox/*` endpoints (not part of Alpaca's API)."""

import requests
from django.conf import settings


class SandboxUnavailable(RuntimeError):
    """The built-in sandbox did not answer; it is probably not running."""


def sandbox_accounts() -> list[dict[str, str]]:
    """The sandbox's accounts as `[{"id": <uuid>, "shape": <shape>}, ...]`."""
    url = f"{settings.ALPACA_BROKER_URL}/_sandbox/accounts"
    try:
        response = requests.get(
            url, auth=settings.ALPACA_BROKER_CREDENTIALS, timeout=settings.ALPACA_TIMEOUT
        )
        response.raise_for_status()
    except requests.RequestException as exc:
        raise SandboxUnavailable(
            f"built-in sandbox at {settings.ALPACA_BROKER_URL} did not answer "
            f"({type(exc).__name__}); start it with `python manage.py sandbox` or `bin/run`"
        ) from exc
    return response.json()["accounts"]
