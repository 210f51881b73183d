"""Why a call to Alpaca failed, in our terms: the only exceptions :mod:`marketdata.broker` and
:mod:`marketdata.market_history` raise.

Callers decide what to do from the class alone (show "not found", back off, retry later) and
may show ``message`` to a user: it never carries keys, secrets, credentialed URLs or headers.
No alpaca-py or ``requests`` exception type ever reaches a caller.

How Alpaca's answers map (decided in :mod:`marketdata.broker_failures`):

===============================================  =====================
answer                                           exception
===============================================  =====================
404                                              BrokerNotFound
401 on an account call, credentials still good   BrokerNotFound
401 otherwise, 403                               BrokerForbidden
403 on an order submission                       BrokerRejected
400, 409, 422 and other 4xx; invalid arguments   BrokerRejected
429                                              BrokerRateLimited
5xx, refused/reset connection, malformed body    BrokerUnavailable
no answer within ALPACA_TIMEOUT                  BrokerTimeout
===============================================  =====================
"""

from __future__ import annotations


class BrokerError(Exception):
    """A broker call failed; ``message`` is safe to show, ``status`` is the HTTP status if any."""

    default_message = "The broker could not complete the request."

    def __init__(
        self, message: str | None = None, *, status: int | None = None, code: int | None = None
    ) -> None:
        self.message = message or self.default_message
        self.status = status
        self.code = code  # Alpaca's 8-digit error code, when it sent one
        super().__init__(self.message)


class BrokerNotFound(BrokerError):
    """The account, asset or order does not exist for this partner.

    Alpaca answers 401 ``40110000`` (not 404) for an account id the partner does not own; the
    gateway reports that as not found once it has checked that the credentials themselves work.
    """

    default_message = "The broker has no such record."


class BrokerForbidden(BrokerError):
    """The broker refused our credentials (401) or this operation for them (403)."""

    default_message = "The broker refused our credentials for this request."


class BrokerRejected(BrokerError):
    """The request was invalid or not allowed in this state; ``message`` keeps Alpaca's reason."""

    default_message = "The broker rejected the request."


class BrokerRateLimited(BrokerError):
    """Too many requests (429); wait ``retry_after`` seconds before trying again."""

    default_message = "The broker is rate limiting us; try again shortly."

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float = 1.0,
        status: int | None = 429,
        code: int | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class BrokerUnavailable(BrokerError):
    """The broker failed (5xx), could not be reached, or answered something we cannot read."""

    default_message = "The broker is unavailable right now."


class BrokerTimeout(BrokerError):
    """The broker did not answer within ALPACA_TIMEOUT; the request may still have taken effect."""

    default_message = "The broker did not answer in time."
