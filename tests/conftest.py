"""Shared fixtures over the real services started by `tests.stack`."""

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings

from tests.stack import sandbox_origin


@pytest.fixture(scope="session")
def sandbox_url() -> str:
    """HTTP origin of the built-in sandbox started for this test run."""
    return sandbox_origin()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client for the test Redis, emptied first so tests never see each other's keys."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.close()
