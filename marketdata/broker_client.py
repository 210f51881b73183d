"""alpaca-py's REST clients as we send with them: time-bounded, never retrying.

The SDK passes no timeout to ``requests`` and silently retries a 429 or 504 three times, 3 s
apart; :func:`time_bounded` gives every request a (connect, read) timeout of ALPACA_TIMEOUT and
turns the retries off (:func:`marketdata.compat.disable_sdk_retries`), so a caller hears of a
rate limit at once. ``requests.Session`` is not thread-safe, so each thread gets a client of its
own (:class:`PerThread`): the gateway's ``BrokerClient`` (:class:`ThreadClients`) and the
market-history data clients alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import requests
from alpaca.broker import BrokerClient
from alpaca.common.rest import RESTClient

from .compat import disable_sdk_retries, replace_sdk_session

C = TypeVar("C")
R = TypeVar("R", bound=RESTClient)


class TimeoutSession(requests.Session):
    """A Session that gives every request a (connect, read) timeout: alpaca-py passes none."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = (timeout, timeout)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


def time_bounded(client: R, timeout: float) -> R:
    """``client`` with a (connect, read) timeout on every request and the SDK's retries off."""
    disable_sdk_retries(client)
    replace_sdk_session(client, TimeoutSession(timeout))
    return client


class PerThread(Generic[C]):
    """One client per thread, made by ``build`` on the thread's first call."""

    def __init__(self, build: Callable[[], C]) -> None:
        self._build = build
        self._local = threading.local()

    def current(self) -> C:
        """This thread's client."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._build()
        return client


class ThreadClients(PerThread[BrokerClient]):
    """One configured ``BrokerClient`` per thread, built on the thread's first call."""

    def __init__(self, key: str, secret: str, url: str, sandbox: bool, timeout: float) -> None:
        # raw_data: we build our records from the JSON so money never passes through float.
        super().__init__(
            lambda: time_bounded(
                BrokerClient(key, secret, sandbox=sandbox, raw_data=True, url_override=url),
                timeout,
            )
        )
