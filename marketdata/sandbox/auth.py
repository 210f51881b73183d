"""Credentials as Alpaca checks them: HTTP Basic on the Broker API, key headers on market data."""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

UNAUTHORIZED = {"code": 40110000, "message": "request is not authorized"}


class Credentials:
    """The one key pair the sandbox accepts."""

    def __init__(self, key: str, secret: str) -> None:
        self.key = key
        self.secret = secret

    def matches(self, key: str | None, secret: str | None) -> bool:
        if key is None or secret is None:
            return False
        # Bytes, because compare_digest refuses non-ASCII str and a bad key must not raise.
        return hmac.compare_digest(key.encode(), self.key.encode()) and hmac.compare_digest(
            secret.encode(), self.secret.encode()
        )

    def request_ok(self, request: web.Request) -> bool:
        """Basic ``key:secret`` (Broker API) or APCA-API-KEY-ID / -SECRET-KEY headers (data API)."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return self.matches(key, secret)
        return self.matches(
            request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")
        )


def unauthorized() -> web.Response:
    return web.json_response(UNAUTHORIZED, status=401)
