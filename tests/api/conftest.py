"""Fixtures for the portfolio API tests: users linked to sandbox accounts, authenticated
clients, the recording pass-through, raw reads of the sandbox, and the sandbox's fault knobs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clera.devstack.api_calls import Recorder
from portfolio.models import BrokerageAccount


@pytest.fixture(autouse=True)
def _no_cached_book(redis_client) -> None:
    """Start every API test with an empty Redis: no real-time book, so reads go to the broker
    and the recomputations from the sandbox's raw data compare like with like."""


@pytest.fixture(scope="session")
def shape_account(sandbox_accounts: list[dict]) -> dict[str, str]:
    """The first sandbox account of each shape, by shape; the generator never trades them
    into another shape, and the write tests below use other accounts."""
    found: dict[str, str] = {}
    for account in sandbox_accounts:
        found.setdefault(account["shape"], account["id"])
    return found


@pytest.fixture(scope="session")
def spare_accounts(sandbox_accounts: list[dict], shape_account: dict[str, str]) -> list[str]:
    """Funded accounts that no read test looks at, for tests that write (deposits)."""
    firsts = set(shape_account.values())
    return [
        a["id"]
        for a in reversed(sandbox_accounts)
        if a["id"] not in firsts and a["shape"] not in ("empty",)
    ]


@pytest.fixture(scope="session")
def recorder_server(sandbox_url: str) -> Iterator[Recorder]:
    with Recorder(sandbox_url) as recorder:
        yield recorder


@pytest.fixture
def recorder(recorder_server: Recorder, settings, redis_client) -> Recorder:
    """The gateway goes through the recorder, with an empty cache and no calls recorded."""
    settings.ALPACA_BROKER_URL = recorder_server.url
    recorder_server.clear()
    return recorder_server


@pytest.fixture
def link(django_user_model) -> Callable[..., object]:
    """A user (new, unless given) linked to the given Alpaca accounts, in order. No password:
    hashing one costs half a second, and these users sign in with tokens."""

    def make(*account_ids: str, user=None):
        user = user or django_user_model.objects.create_user(
            username=f"user-{uuid.uuid4().hex[:8]}"
        )
        for account_id in account_ids:
            BrokerageAccount.objects.create(user=user, account_id=account_id)
        return user

    return make


@pytest.fixture
def client_for() -> Callable[..., APIClient]:
    """An API client that sends the user's token, as a non-browser client does."""

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0]}")
        return client

    return make
