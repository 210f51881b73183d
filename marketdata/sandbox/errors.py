"""Refusals as Alpaca words them: an HTTP status, Alpaca's numeric code and a message.

Whatever refuses a request — a handler checking its parameters, the exchange judging an
order, the history checking its window — raises :class:`ApiError`; the Broker API answers it
as ``{"code": code, "message": message}`` with its status.
"""

from __future__ import annotations


class ApiError(Exception):
    """A request Alpaca would refuse: answered as ``{"code": code, "message": message}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict:
        return {"code": self.code, "message": self.message}


def unauthorized() -> ApiError:
    return ApiError(401, 40110000, "request is not authorized")


def forbidden(message: str) -> ApiError:
    """What the account cannot afford or does not hold."""
    return ApiError(403, 40310000, message)


def not_found(what: str) -> ApiError:
    return ApiError(404, 40410000, f"{what} not found")


def invalid(message: str) -> ApiError:
    """A malformed or out-of-range parameter; the message names it and what is valid."""
    return ApiError(422, 40010001, message)


def not_cancelable(what: str) -> ApiError:
    return ApiError(422, 42210000, f"{what} is not cancelable")
