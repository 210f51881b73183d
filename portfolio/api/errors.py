"""The API's errors and the ONE handler that gives every error the same JSON shape.

Every failure answers ``{"error": {"code": ..., "message": ..., "details": {...}}}``:
``code`` is a stable machine-readable string, ``message`` a sentence a person can read, and
``details`` (optional) says more, e.g. which parameter was wrong and its valid values.

Domain refusals (:mod:`portfolio.errors`) get their kind's status here, and only here. Broker
failures are translated here, and only here: Alpaca rate-limiting us is 503 with
``Retry-After`` (our capacity problem, not the client's), Alpaca down or unreadable is 502,
Alpaca too slow is 504, and Alpaca refusing the request keeps Alpaca's own message. Redis
unreachable where nothing could stand in for it is 503 ``service_unavailable`` with
``Retry-After`` (reads fall back to the broker before it comes to that). Anything unexpected
is logged with its traceback and answered 500 in the same shape, without it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response

from marketdata.errors import (
    BrokerError,
    BrokerForbidden,
    BrokerNotFound,
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
)
from portfolio import errors as domain

logger = logging.getLogger(__name__)

#: Seconds a client is asked to wait when Redis is away: about how long a restart takes.
REDIS_RETRY_AFTER = 5


class ApiError(exceptions.APIException):
    """A refusal of the web's own (CSRF, credentials), raised where DRF expects its exceptions;
    every other refusal is a :class:`portfolio.errors.PortfolioError`."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request could not be processed."

    def __init__(self, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(self.default_detail, self.default_code)
        self.details = details


class CsrfFailed(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "csrf_failed"
    default_detail = (
        "This browser request has no valid CSRF token; send the csrftoken cookie's value "
        "in an X-CSRFToken header."
    )


#: Each kind of domain error's HTTP status (portfolio/errors.py), most specific first.
_DOMAIN_STATUS: tuple[tuple[type[domain.PortfolioError], int], ...] = (
    (domain.InvalidInput, status.HTTP_400_BAD_REQUEST),
    (domain.NotFound, status.HTTP_404_NOT_FOUND),
    (domain.Conflict, status.HTTP_409_CONFLICT),
    (domain.Refused, status.HTTP_422_UNPROCESSABLE_ENTITY),
    (domain.Unavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
)


def _domain_status(exc: domain.PortfolioError) -> int:
    return next(
        (code for kind, code in _DOMAIN_STATUS if isinstance(exc, kind)),
        status.HTTP_400_BAD_REQUEST,
    )


# What DRF's own exceptions become: status -> (code, message when DRF's is unhelpful).
_DRF_CODES = {
    status.HTTP_400_BAD_REQUEST: "invalid_request",
    status.HTTP_401_UNAUTHORIZED: "not_authenticated",
    status.HTTP_403_FORBIDDEN: "permission_denied",
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_406_NOT_ACCEPTABLE: "not_acceptable",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    status.HTTP_429_TOO_MANY_REQUESTS: "throttled",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    """The one error shape."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def _retry_after_header(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def _broker_response(exc: BrokerError) -> Response:
    if isinstance(exc, BrokerRateLimited):
        return Response(
            error_body(
                "broker_rate_limited",
                "The broker is limiting how often we may ask; try again shortly.",
                {"retry_after": max(1, math.ceil(exc.retry_after))},
            ),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=_retry_after_header(exc.retry_after),
        )
    if isinstance(exc, BrokerTimeout):
        return Response(
            error_body("broker_timeout", "The broker did not answer in time; try again."),
            status=status.HTTP_504_GATEWAY_TIMEOUT,
        )
    if isinstance(exc, BrokerNotFound):
        return Response(
            error_body("broker_not_found", "The broker has no such record."),
            status=status.HTTP_404_NOT_FOUND,
        )
    if isinstance(exc, BrokerRejected):
        code = status.HTTP_400_BAD_REQUEST if exc.status == 400 else 422
        details = {"broker_code": exc.code} if exc.code else None
        return Response(error_body("broker_rejected", exc.message, details), status=code)
    if isinstance(exc, BrokerForbidden) and exc.status == 403:
        return Response(
            error_body("broker_forbidden", exc.message), status=status.HTTP_403_FORBIDDEN
        )
    # Unavailable, unreadable, or our own credentials refused: the fault is upstream of the
    # client, and the reason (e.g. bad keys) is for our logs, not for them.
    if not isinstance(exc, BrokerUnavailable):
        logger.error("broker refused our credentials: %s", exc.message)
    return Response(
        error_body("broker_unavailable", "The broker is unavailable right now; try again soon."),
        status=status.HTTP_502_BAD_GATEWAY,
    )


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation detail as {"field" or "field.sub": ["message", ...]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, value in enumerate(detail):
            flat.update(_flatten(value, f"{prefix}[{index}]"))
        return flat
    items = detail if isinstance(detail, list) else [detail]
    return {prefix: [str(item) for item in items]}


def _validation_response(exc: exceptions.ValidationError) -> Response:
    fields = _flatten(exc.detail)
    name, messages = next(iter(fields.items()))
    message = f"{name}: {messages[0]}" if name else messages[0]
    return Response(
        error_body("invalid_parameter", message, {"fields": fields}),
        status=status.HTTP_400_BAD_REQUEST,
    )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception a view raises becomes one shaped answer."""
    # Imported here: rest_framework.views loads the authentication classes, which import
    # this module's exceptions.
    from rest_framework.views import set_rollback

    set_rollback()
    if isinstance(exc, Http404):
        exc = domain.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, domain.PortfolioError):
        return Response(
            error_body(exc.code, exc.message, exc.details),
            status=_domain_status(exc),
            headers=_retry_after_header(exc.retry_after),
        )
    if isinstance(exc, ApiError):
        return Response(
            error_body(exc.default_code, str(exc.detail), exc.details), status=exc.status_code
        )
    if isinstance(exc, BrokerError):
        return _broker_response(exc)
    if isinstance(exc, RedisError):
        logger.warning("Redis unavailable in %s: %r", type(context.get("view")).__name__, exc)
        return Response(
            error_body("service_unavailable", "This is unavailable for a moment; try again soon."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=_retry_after_header(REDIS_RETRY_AFTER),
        )
    if isinstance(exc, exceptions.ValidationError):
        return _validation_response(exc)
    if isinstance(exc, exceptions.APIException):
        headers = _retry_after_header(exc.wait if isinstance(exc, exceptions.Throttled) else None)
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            request = context.get("request")
            view = context.get("view")
            if request is not None and view is not None:
                headers["WWW-Authenticate"] = view.get_authenticate_header(request) or "Token"
        code = _DRF_CODES.get(exc.status_code, "error")
        if isinstance(exc, exceptions.AuthenticationFailed):
            code = "authentication_failed"
        return Response(
            error_body(code, _sentence(exc.detail)), status=exc.status_code, headers=headers
        )
    view = context.get("view")
    logger.exception("unexpected error in %s", type(view).__name__ if view else "the API")
    return Response(
        error_body(
            "internal_error",
            "Something went wrong on our side. It has been logged; please try again.",
        ),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _sentence(detail: Any) -> str:
    text = str(detail[0] if isinstance(detail, list) and detail else detail)
    return text if text.endswith((".", "!", "?")) else f"{text}."
