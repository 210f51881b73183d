"""Fixtures shared by the sandbox tests."""

from collections.abc import Iterator

import pytest
import requests
from alpaca.broker import BrokerClient
from django.conf import settings


@pytest.fixture(scope="session")
def broker(sandbox_url: str) -> BrokerClient:
    """The real SDK client, pointed at the session's sandbox."""
    return BrokerClient(
        settings.SANDBOX_API_KEY,
        settings.SANDBOX_SECRET_KEY,
        sandbox=True,
        url_override=sandbox_url,
    )


@pytest.fixture(scope="session")
def accounts(sandbox_url: str) -> list[dict]:
    """The sandbox's accounts as its control endpoint lists them."""
    return requests.get(f"{sandbox_url}/_sandbox/accounts", timeout=10).json()["accounts"]


@pytest.fixture(scope="session")
def http(sandbox_url: str) -> Iterator[requests.Session]:
    """Raw HTTP with the Broker API's credentials, for what the SDK refuses to send."""
    session = requests.Session()
    session.auth = (settings.SANDBOX_API_KEY, settings.SANDBOX_SECRET_KEY)
    yield session
    session.close()
