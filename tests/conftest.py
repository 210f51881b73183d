"""Shared fixtures over the real services started by `tests.stack`."""

from collections.abc import Callable, Iterator

import pytest
import redis
import requests
from django.conf import settings

from tests.stack import services


@pytest.fixture(scope="session")
def sandbox_url() -> str:
    """HTTP origin of the built-in sandbox started for this test run."""
    return services().sandbox.origin


@pytest.fixture(scope="session")
def sandbox_accounts() -> list[dict]:
    """Every sandbox account with its shape (diversified, crypto, cash_only, ...), in order."""
    return services().accounts()


@pytest.fixture(scope="session")
def raw(sandbox_url: str) -> Callable[..., object]:
    """GET a Broker API path straight from the sandbox, as Alpaca's JSON."""
    auth = (settings.SANDBOX_API_KEY, settings.SANDBOX_SECRET_KEY)

    def get(path: str, **params: object) -> object:
        answer = requests.get(f"{sandbox_url}/v1{path}", params=params, auth=auth, timeout=10)
        answer.raise_for_status()
        return answer.json()

    return get


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client for the test Redis, emptied first so tests never see each other's keys."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def faults(sandbox_url: str) -> Iterator[Callable[..., None]]:
    """Turn the sandbox's REST fault knobs; whatever was set before is restored afterwards."""
    url = f"{sandbox_url}/_sandbox/faults"
    before = requests.get(url, timeout=5).json()

    def turn(**knobs: float) -> None:
        requests.put(url, json=knobs, timeout=5).raise_for_status()

    try:
        yield turn
    finally:
        requests.put(url, json=before, timeout=5).raise_for_status()
