"""alpaca-py's ``BrokerClient`` as the gateway sends with it: time-bounded, never retrying.

The SDK passes no timeout to ``requests`` and silently retries a 429 or 504 three times, 3 s
apart; here every request gets a (connect, read) timeout of ALPACA_TIMEOUT and the retries are
off (:func:`marketdata.compat.disable_sdk_retries`), so a caller hears of a rate limit at once.
``requests.Session`` is not thread-safe, so each thread gets a client of its own.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from alpaca.broker import BrokerClient

from .compat import disable_sdk_retries, replace_sdk_session


class TimeoutSession(requests.Session):
    """A Session that gives every request a (connect, read) timeout: alpaca-py passes none."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = (timeout, timeout)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


class ThreadClients:
    """One configured ``BrokerClient`` per thread, built on the thread's first call."""

    def __init__(self, key: str, secret: str, url: str, sandbox: bool, timeout: float) -> None:
        self._key = key
        self._secret = secret
        self._url = url
        self._sandbox = sandbox
        self._timeout = timeout
        self._local = threading.local()

    def current(self) -> BrokerClient:
        """This thread's client."""
        client = getattr(self._local, "client", None)
        if client is None:
            # raw_data: we build our records from the JSON so money never passes through float.
            client = BrokerClient(
                self._key,
                self._secret,
                sandbox=self._sandbox,
                raw_data=True,
                url_override=self._url,
            )
            disable_sdk_retries(client)
            replace_sdk_session(client, TimeoutSession(self._timeout))
            self._local.client = client
        return client
