"""The one place where a failed Alpaca call becomes one of our errors (:mod:`marketdata.errors`).

SDK answers (``APIError``), transport failures (``requests``' exceptions are OSErrors) and
bodies we could not parse are translated by HTTP status and by what the call was (naming an
account, placing an order), as the table in :mod:`marketdata.errors` says. Alpaca's own
message is kept where it helps the caller, with our key and secret cut out of it. The Broker
API gateway (:mod:`marketdata.broker`) and the market-data history
(:mod:`marketdata.market_history`) both translate here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from alpaca.common.exceptions import APIError

from . import errors

#: Everything a broker call can raise that is not ours: HTTP answers (APIError), transport
#: failures (requests' exceptions are OSErrors), and unreadable bodies while parsing.
FAILURES = (APIError, OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError)

#: Seconds to wait after a 429 that carries no usable Retry-After header.
DEFAULT_RETRY_AFTER = 1.0


class FailureTranslator:
    """Our error for a failed call, and any text about it with our credentials cut out.

    ``probe`` sends a request that names no account; a 401 to it means the credentials
    themselves are refused. Clients whose calls never name an account need none.
    """

    def __init__(
        self, key: str, secret: str, timeout: float, probe: Callable[[], object] | None = None
    ) -> None:
        self._secrets = (secret, key)
        self._timeout = timeout
        self._probe = probe

    def translate(
        self, failure: Exception, *, account_scoped: bool, places_order: bool
    ) -> errors.BrokerError:
        """The error a caller gets for ``failure``."""
        if isinstance(failure, requests.Timeout):
            return errors.BrokerTimeout(f"The broker did not answer within {self._timeout:g} s.")
        if isinstance(failure, requests.ConnectionError):
            return errors.BrokerUnavailable("The broker could not be reached.")
        if not isinstance(failure, APIError) or failure.status_code is None:
            return errors.BrokerUnavailable("The broker sent an answer we could not read.")
        status = failure.status_code
        code, reason = self._alpaca_reason(failure)
        if status == 429:
            return errors.BrokerRateLimited(
                reason, retry_after=retry_after(failure.response), status=status, code=code
            )
        # Alpaca answers 401 for an account the partner does not have; it is only "not found"
        # when the same credentials still work on a call that names no account.
        if status == 404 or (status == 401 and account_scoped and not self._credentials_refused()):
            return errors.BrokerNotFound(
                reason if status == 404 else None, status=status, code=code
            )
        # Alpaca refuses orders it will not accept (buying power, shorting) with a 403.
        if status == 403 and places_order:
            return errors.BrokerRejected(reason, status=status, code=code)
        if status in (401, 403):
            return errors.BrokerForbidden(
                reason if status == 403 else None, status=status, code=code
            )
        if 400 <= status < 500:
            return errors.BrokerRejected(reason, status=status, code=code)
        return errors.BrokerUnavailable(status=status, code=code)

    def failed(
        self,
        operation: str,
        failure: Exception,
        log: logging.Logger,
        *,
        account_scoped: bool = False,
        places_order: bool = False,
    ) -> errors.BrokerError:
        """``failure`` translated, and logged once on ``log`` with our credentials cut out.

        Raise the result after the ``except`` block, not in it: the SDK's exception must not
        ride along as its context (its request carries our credentials).
        """
        error = self.translate(failure, account_scoped=account_scoped, places_order=places_order)
        cause = self.redact(f"{type(failure).__name__}: {failure}")[:300]
        log.warning(
            "%s failed: status=%s %s (%s)",
            operation,
            error.status or "-",
            type(error).__name__,
            cause,
        )
        return error

    def redact(self, text: str) -> str:
        """``text`` with our key and secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _alpaca_reason(self, failure: APIError) -> tuple[int | None, str | None]:
        """Alpaca's ``{"code", "message"}``, if the body was one; the message made safe to show."""
        try:
            return int(failure.code), self.redact(str(failure.message))[:300] or None
        except (ValueError, KeyError, TypeError):
            return None, None

    def _credentials_refused(self) -> bool:
        """Whether our credentials are refused outright (the probe answered 401)."""
        if self._probe is None:
            return True
        try:
            self._probe()
        except APIError as answer:
            return answer.status_code == 401
        except FAILURES:
            return False
        return False


def retry_after(response: requests.Response | None) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date), else the default."""
    header = response.headers.get("Retry-After") if response is not None else None
    if header is None:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(header)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
    return max(0.0, seconds) if math.isfinite(seconds) else DEFAULT_RETRY_AFTER
