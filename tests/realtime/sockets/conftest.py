"""Fixtures for the socket tests: users linked to sandbox accounts, sessions, tickets, and a
client that speaks to the real ASGI application (clera.asgi) over the real channel layer."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from clera.asgi import application
from portfolio.models import BrokerageAccount
from realtime import tickets

ORIGIN = "http://127.0.0.1:8000"


class Socket(WebsocketCommunicator):
    """Channels' test communicator with the helpers these tests need."""

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message the server sends (an AssertionError on a close instead)."""
        return await self.receive_json_from(timeout)

    async def next_of(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next message other than a ping; it must be of type ``kind``."""
        while True:
            message = await self.next(timeout)
            if message["type"] != "ping":
                assert message["type"] == kind, message
                return message

    async def closed(self, timeout: float = 10.0) -> tuple[int, list[dict[str, Any]]]:
        """Read until the server closes: its close code, and what it sent before."""
        before = []
        while True:
            output = await self.receive_output(timeout)
            if output["type"] == "websocket.close":
                return output.get("code", 1000), before
            before.append(json.loads(output["text"]))

    async def send(self, message: Any) -> None:
        await self.send_json_to(message)


@dataclass(frozen=True)
class Owner:
    """A user linked to one sandbox account, signed in on a browser."""

    user: Any
    account_id: str
    cookie: str


def sign_in(user: Any) -> str:
    """The session cookie of a browser signed in as the user."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def make_owner(django_user_model: Any, *account_ids: str) -> Owner:
    user = django_user_model.objects.create_user(username=f"u-{uuid.uuid4().hex[:8]}")
    for account_id in account_ids:
        BrokerageAccount.objects.create(user=user, account_id=account_id)
    return Owner(user, account_ids[0] if account_ids else "", sign_in(user))


@pytest.fixture(scope="session")
def shape_account(sandbox_accounts: list[dict]) -> dict[str, str]:
    """The first sandbox account of each shape."""
    return {a["shape"]: a["id"] for a in reversed(sandbox_accounts)}


@pytest.fixture
def owner(django_user_model: Any, shape_account: dict[str, str], redis_client: Any) -> Owner:
    """A user owning the first diversified account (and Redis emptied for the test)."""
    return make_owner(django_user_model, shape_account["diversified"])


@pytest.fixture
def stranger(django_user_model: Any, shape_account: dict[str, str]) -> Owner:
    """Another user, owning the first crypto account."""
    return make_owner(django_user_model, shape_account["crypto"])


@pytest.fixture
def ticket() -> Callable[..., str]:
    def make(user: Any, account_id: str | None = None) -> str:
        return tickets.issue(user.pk, account_id)

    return make


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Any]]:
    """Open sockets to the real application; each is closed after the test."""
    opened: list[Socket] = []

    async def open_socket(
        path: str, *, cookie: str | None = None, origin: str | None = ORIGIN, app: Any = None
    ) -> Socket:
        headers = []
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if cookie is not None:
            headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
        socket = Socket(app or application, path, headers=headers)
        opened.append(socket)
        connected, _ = await socket.connect(timeout=10)
        assert connected, f"handshake refused for {path}"
        return socket

    yield open_socket
    for socket in opened:
        await socket.disconnect(timeout=5)
