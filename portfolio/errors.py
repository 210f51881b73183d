"""What portfolio services and selectors refuse, as plain exceptions (no web framework here).

Each error carries a stable machine-readable ``code``, a ``message`` a person can read, optional
``details`` and, when retrying later will work, ``retry_after`` seconds. Its *kind* — the base
class — says what went wrong, and each way out maps kinds once: the API's exception handler to
HTTP statuses (``portfolio.api.errors``), the sockets to close codes (``realtime.consumers``).

======================  ====================================================================
kind                    meaning
======================  ====================================================================
:class:`InvalidInput`   the request itself is wrong (HTTP 400)
:class:`NotFound`       nothing of the caller's is there (404)
:class:`Conflict`       not now: retry later with the same request (409, ``retry_after``)
:class:`Refused`        understood, and refused as it stands (422)
:class:`Unavailable`    a part we depend on is down: retry later (503, ``retry_after``)
======================  ====================================================================
"""

from __future__ import annotations

from typing import Any


class PortfolioError(Exception):
    """An outcome we answer on purpose."""

    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details
        self.retry_after = retry_after


class InvalidInput(PortfolioError):
    pass


class NotFound(PortfolioError):
    code = "not_found"
    message = "There is nothing at this address."


class Conflict(PortfolioError):
    code = "conflict"


class Refused(PortfolioError):
    pass


class Unavailable(PortfolioError):
    code = "unavailable"
    message = "This is unavailable right now; try again shortly."


class InvalidParameter(InvalidInput):
    code = "invalid_parameter"
    message = "A parameter is not valid."


class IdempotencyKeyRequired(InvalidInput):
    code = "idempotency_key_required"
    message = (
        "Send an Idempotency-Key header (a unique string per deposit, up to 255 characters) "
        "so a retried request can never add funds twice."
    )


class AccountNotFound(NotFound):
    code = "account_not_found"
    message = "No brokerage account with this id is linked to your login."


class NoAccount(NotFound):
    code = "no_account"
    message = "No brokerage account is linked to your login yet."


class AssetNotFound(NotFound):
    code = "asset_not_found"
    message = "The broker knows no asset with this symbol or id."


class RequestInProgress(Conflict):
    code = "request_in_progress"
    message = (
        "A deposit with this Idempotency-Key is still being processed; "
        "retry with the same key in a moment to get its result."
    )


class BankLinkPending(Conflict):
    code = "bank_link_pending"
    message = (
        "Your bank account is still being verified by the broker; "
        "retry with the same Idempotency-Key in a few seconds."
    )


class IdempotencyKeyReused(Refused):
    code = "idempotency_key_reused"
    message = (
        "This Idempotency-Key was already used for a different deposit; "
        "use a new key for a new deposit."
    )


class BankLinkRequired(Refused):
    code = "bank_link_required"
    message = "Link a bank account to this brokerage account before adding funds."
