"""Fixtures shared by the sandbox tests."""

import pytest
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
