"""The OpenAPI description of the portfolio API: response shapes, error answers, and the
rules a client must know (money, errors, pagination, analytics), served at ``/api/schema``.

Responses are built by selectors, not serializers, so their shapes are written here as JSON
Schema components; the schemathesis test holds every answer to them.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from portfolio import analytics, money, risk
from portfolio.history import PERIODS
from portfolio.selectors import ACTIVITY_TYPES

DESCRIPTION = f"""
The portfolio of the signed-in user's Alpaca brokerage account(s): summary, positions,
performance history, risk and diversification, orders, activities and deposits.

## Signing in
Browsers use their Django session cookie; unsafe methods (POST) then need the `csrftoken`
cookie's value in an `X-CSRFToken` header. Other clients trade a username and password for a
token at `POST /api/auth/token` and send `Authorization: Token <token>`. Every endpoint except
the token request needs one or the other: without it the answer is 401.

## Choosing the account
`account_id` (a query parameter) picks one of the accounts linked to your login; without it
you get your first. An id that is not linked to you answers 404, whether or not it exists.

## Money
{money.__doc__}
Scores are strings with one decimal (`"7.5"`); times are RFC 3339 in UTC (`...Z`).

## Errors
Every error answers the same shape:

```json
{{"error": {{"code": "invalid_parameter",
            "message": "period: \\"2Y\\" is not valid; use one of: {", ".join(PERIODS)}.",
            "details": {{"fields": {{"period": ["..."]}}}}}}}}
```

`code` is stable and meant for programs; `message` is a sentence for people; `details` is
optional. 400 a bad parameter (the message names the valid values), 401 not signed in or a
bad token, 403 a CSRF failure, 404 not found (or not yours), 409 retry later (`Retry-After`),
422 refused (e.g. by the broker, with its reason), 429 too many requests (`Retry-After`),
500 our fault (logged; never a traceback), 502 the broker is down or answered nonsense,
503 the broker is rate-limiting us (`Retry-After`), 504 the broker did not answer in time.

## Live updates
`/ws/portfolio/<account_id>` (a WebSocket) sends a `snapshot` — the summary's body with its
holdings — then numbered `update`s: a whole state again, or `"partial": true` with only the
top-level figures and the holdings (each whole, matched by `symbol`) that changed since the
update before. Apply them in `seq` order; reconnect with `?last_seq=N` to get the ones missed
(or a fresh snapshot). The project's `realtime/protocol.py` states every message.

## Pages
Lists answer one page and a `next_cursor`; pass it back as `cursor` (with the same filters)
for the next page. `null` means there is no next page. Cursors are opaque.

## Analytics
Definitions (with worked examples in the project's `docs/analytics.md`):

{analytics.__doc__}

## Risk views and statistics
`/api/portfolio/risk`, `/frontier` and `/performance` (and `history?benchmark=`) are computed
from daily closes; each answer's `conventions` says what it assumed: the window's first and
last day, the annualisation (252 trading days), the risk-free rate and the benchmark.
Percentages are percent units to two places; ratios without a unit (correlation, beta,
Sharpe, Sortino) have four places. The methods:

{risk.__doc__}
"""


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


_MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "example": "1234.50"}
_PRICE = {"type": "string", "pattern": r"^-?\d+\.\d{2,}$", "example": "187.20"}
_QUANTITY = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "example": "10"}
_PERCENT = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "example": "-1.25"}
_MOMENT = {"type": "string", "format": "date-time"}
_TEXT = {"type": "string"}
_UUID = {"type": "string", "format": "uuid"}


def _object(properties: dict[str, dict], optional: tuple[str, ...] = ()) -> dict:
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def _page(name: str, item: str) -> dict:
    return _object(
        {
            "account_id": _UUID,
            name: {"type": "array", "items": ref(item)},
            "next_cursor": _nullable({"type": "string"}),
        }
    )


_SCORE = _object(
    {
        "score": _nullable({"type": "string", "pattern": r"^\d+\.\d$", "example": "6.4"}),
        "label": _TEXT,
        "explanation": _TEXT,
    }
)
_SLICES = {
    "type": "array",
    "items": _object({"name": _TEXT, "value": ref("Money"), "percent": _nullable(_PERCENT)}),
}
_CHANGE = _object({"amount": _nullable(_MONEY), "percent": _nullable(_PERCENT)})
_RATIO = {"type": "string", "pattern": r"^-?\d+\.\d{4}$", "example": "0.5312"}
_DAY = {"type": "string", "format": "date"}
_CONVENTIONS = _object(
    {
        "window_days": {"type": "integer"},
        "window_start": _nullable(_DAY),
        "window_end": _nullable(_DAY),
        "annualization": {"type": "integer"},
        "risk_free_rate": _PERCENT,
        "benchmark": _TEXT,
    }
)
_EXCLUDED = {
    "type": "array",
    "items": _object(
        {
            "symbol": _TEXT,
            "reason": {"type": "string", "enum": ["option", "short_history"]},
            "days": _nullable({"type": "integer"}),
            "message": _TEXT,
        }
    ),
}
_RISK_POINT = _object(
    {"volatility": _PERCENT, "return": _PERCENT, "sharpe": _nullable(_RATIO)},
    optional=("sharpe",),
)
_PORTFOLIO_POINT = _object(
    {
        "volatility": _PERCENT,
        "return": _PERCENT,
        "sharpe": _nullable(_RATIO),
        "weights": {
            "type": "array",
            "items": _object({"symbol": _TEXT, "weight": _PERCENT}),
        },
    }
)

COMPONENTS: dict[str, dict] = {
    "Money": _MONEY,
    "Price": _PRICE,
    "Quantity": _QUANTITY,
    "Percent": _PERCENT,
    "Error": _object(
        {
            "error": _object(
                {
                    "code": {"type": "string", "example": "invalid_parameter"},
                    "message": {"type": "string"},
                    "details": {"type": "object", "additionalProperties": True},
                },
                optional=("details",),
            )
        }
    ),
    "Token": _object({"token": _TEXT}),
    "Summary": _object(
        {
            "account_id": _UUID,
            "total_value": _MONEY,
            "cash": _MONEY,
            "positions_value": _MONEY,
            "long_value": _MONEY,
            "short_value": _MONEY,
            "last_equity": _MONEY,
            "today_return": _MONEY,
            "today_return_percent": _nullable(_PERCENT),
            "as_of": _MOMENT,
            "oldest_price_at": _nullable(_MOMENT),
        }
    ),
    "Position": _object(
        {
            "symbol": _TEXT,
            "name": _nullable(_TEXT),
            "asset_class": _nullable(_TEXT),
            "exchange": _nullable(_TEXT),
            "side": {"type": "string", "enum": ["long", "short"]},
            "qty": _QUANTITY,
            "avg_entry_price": _PRICE,
            "price": _PRICE,
            "lastday_price": _nullable(_PRICE),
            "multiplier": {"type": "integer"},
            "market_value": _MONEY,
            "cost_basis": _MONEY,
            "unrealized_pl": _MONEY,
            "unrealized_pl_percent": _nullable(_PERCENT),
            "day_change": _nullable(_MONEY),
            "day_change_percent": _nullable(_PERCENT),
            "weight_percent": _nullable(_PERCENT),
            "price_source": {
                "type": "string",
                "enum": ["trade", "quote", "position", "previous_close", "cost"],
            },
            "price_at": _nullable(_MOMENT),
            "sector": _TEXT,
            "industry": _TEXT,
            "category": _TEXT,
        }
    ),
    "Positions": _object(
        {
            "account_id": _UUID,
            "as_of": _MOMENT,
            "total_value": _MONEY,
            "positions": {"type": "array", "items": ref("Position")},
        }
    ),
    "Analytics": _object(
        {
            "account_id": _UUID,
            "as_of": _MOMENT,
            "total_value": _MONEY,
            "risk": _SCORE,
            "diversification": _SCORE,
            "allocation": _object(
                {"by_asset_class": _SLICES, "by_sector": _SLICES, "by_industry": _SLICES}
            ),
            "definitions_url": _TEXT,
        }
    ),
    "History": _object(
        {
            "account_id": _UUID,
            "period": {"type": "string", "enum": [*PERIODS, "custom"]},
            "timeframe": _TEXT,
            "timestamps": {"type": "array", "items": _MOMENT},
            "equity": {"type": "array", "items": _nullable(_MONEY)},
            "profit_loss": {"type": "array", "items": _nullable(_MONEY)},
            "profit_loss_percent": {"type": "array", "items": _nullable(_PERCENT)},
            "base_value": _nullable(_MONEY),
            "period_change": _CHANGE,
            "all_time_change": _nullable(_CHANGE),
            "time_weighted_return": _nullable(_PERCENT),
            "net_deposits": _MONEY,
            "benchmark": _object(
                {
                    "symbol": _TEXT,
                    "values": {"type": "array", "items": _nullable(_MONEY)},
                    "return": _nullable(_PERCENT),
                    "excess_return": _nullable(_PERCENT),
                }
            ),
        },
        optional=("benchmark",),
    ),
    "Risk": _object(
        {
            "account_id": _UUID,
            "as_of": _nullable(_DAY),
            "conventions": _CONVENTIONS,
            "volatility": _nullable(_PERCENT),
            "holdings": {
                "type": "array",
                "items": _object(
                    {
                        "symbol": _TEXT,
                        "sector": _TEXT,
                        "market_value": _MONEY,
                        "weight": _PERCENT,
                        "volatility": _PERCENT,
                        "beta": _nullable(_RATIO),
                        "contribution": _PERCENT,
                        "risk_share": _nullable(_PERCENT),
                    }
                ),
            },
            "cash": _object({"market_value": _MONEY, "weight": _nullable(_PERCENT)}),
            "excluded": _EXCLUDED,
            "correlation": _object(
                {
                    "symbols": {"type": "array", "items": _TEXT},
                    "matrix": {
                        "type": "array",
                        "items": {"type": "array", "items": _nullable(_RATIO)},
                    },
                }
            ),
            "warnings": {
                "type": "array",
                "items": _object(
                    {
                        "kind": {
                            "type": "string",
                            "enum": ["holding_weight", "sector_weight", "risk_concentration"],
                        },
                        "subject": _TEXT,
                        "value": _PERCENT,
                        "limit": _PERCENT,
                        "message": _TEXT,
                    }
                ),
            },
            "explanation": _TEXT,
        }
    ),
    "Frontier": _object(
        {
            "account_id": _UUID,
            "as_of": _nullable(_DAY),
            "conventions": _CONVENTIONS,
            "symbols": {"type": "array", "items": _TEXT},
            "points": {"type": "array", "items": _RISK_POINT},
            "current": _nullable(_RISK_POINT),
            "min_volatility": _nullable(_PORTFOLIO_POINT),
            "max_sharpe": _nullable(_PORTFOLIO_POINT),
            "improvement": _object(
                {
                    "return_at_current_volatility": _nullable(_PERCENT),
                    "volatility_at_current_return": _nullable(_PERCENT),
                }
            ),
            "excluded": _EXCLUDED,
            "disclaimer": _TEXT,
            "explanation": _TEXT,
        }
    ),
    "Performance": _object(
        {
            "account_id": _UUID,
            "period": {"type": "string", "enum": list(PERIODS)},
            "start": _nullable(_DAY),
            "end": _nullable(_DAY),
            "conventions": _CONVENTIONS,
            "time_weighted_return": _nullable(_PERCENT),
            "money_weighted_return": _nullable(_PERCENT),
            "annualized": _object(
                {
                    "time_weighted_return": _nullable(_PERCENT),
                    "money_weighted_return": _nullable(_PERCENT),
                }
            ),
            "volatility": _nullable(_PERCENT),
            "max_drawdown": _object(
                {
                    "percent": _nullable(_PERCENT),
                    "peak": _nullable(_DAY),
                    "trough": _nullable(_DAY),
                    "recovered": _nullable(_DAY),
                }
            ),
            "sharpe": _nullable(_RATIO),
            "sortino": _nullable(_RATIO),
            "beta": _nullable(_RATIO),
            "alpha": _nullable(_PERCENT),
            "benchmark": _object({"symbol": _TEXT, "return": _nullable(_PERCENT)}),
            "excess_return": _nullable(_PERCENT),
            "explanations": _object(
                {"time_weighted_return": _TEXT, "money_weighted_return": _TEXT}
            ),
        }
    ),
    "Asset": _object(
        {
            "id": _UUID,
            "symbol": _TEXT,
            "name": _nullable(_TEXT),
            "asset_class": _TEXT,
            "exchange": _TEXT,
            "status": _TEXT,
            "tradable": {"type": "boolean"},
            "fractionable": {"type": "boolean"},
            "shortable": {"type": "boolean"},
            "marginable": {"type": "boolean"},
            "sector": _TEXT,
            "industry": _TEXT,
            "category": _TEXT,
            "classified": {"type": "boolean"},
            "classification_note": _nullable(_TEXT),
        }
    ),
    "Order": _object(
        {
            "id": _UUID,
            "client_order_id": _TEXT,
            "symbol": _nullable(_TEXT),
            "side": _nullable(_TEXT),
            "type": _nullable(_TEXT),
            "status": _TEXT,
            "time_in_force": _TEXT,
            "qty": _nullable(_QUANTITY),
            "notional": _nullable(_MONEY),
            "filled_qty": _QUANTITY,
            "filled_avg_price": _nullable(_PRICE),
            "limit_price": _nullable(_PRICE),
            "created_at": _MOMENT,
            "submitted_at": _MOMENT,
            "filled_at": _nullable(_MOMENT),
            "canceled_at": _nullable(_MOMENT),
        }
    ),
    "Activity": _object(
        {
            "id": _TEXT,
            "type": {"type": "string", "enum": list(ACTIVITY_TYPES)},
            "activity_type": _TEXT,
            "date": {"type": "string", "format": "date"},
            "at": _nullable(_MOMENT),
            "symbol": _nullable(_TEXT),
            "side": _nullable(_TEXT),
            "qty": _nullable(_QUANTITY),
            "price": _nullable(_PRICE),
            "net_amount": _nullable(_MONEY),
            "description": _TEXT,
            "order_id": _nullable(_TEXT),
        }
    ),
    "Transfer": _object(
        {
            "id": _UUID,
            "account_id": _UUID,
            "amount": _MONEY,
            "direction": {"type": "string", "enum": ["INCOMING", "OUTGOING"]},
            "status": _TEXT,
            "type": _TEXT,
            "created_at": _MOMENT,
            "updated_at": _nullable(_MOMENT),
        }
    ),
    "Orders": _page("orders", "Order"),
    "Activities": _page("activities", "Activity"),
    "Transfers": _page("transfers", "Transfer"),
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
ERRORS: dict[int, str] = {
    400: "A parameter is not valid: `invalid_parameter` (the message names the valid values).",
    401: "Not signed in, or a bad token: `not_authenticated`, `authentication_failed`.",
    403: "A browser session without a CSRF token: `csrf_failed`.",
    404: "Not found, or not yours: `account_not_found`, `no_account`, `not_found`.",
    415: "The body is not JSON: `unsupported_media_type`.",
    422: "The broker refused the request: `broker_rejected`, with its reason.",
    429: "Too many requests from you: `throttled`; see `Retry-After`.",
    500: "Our fault, logged: `internal_error`.",
    502: "The broker is down or answered something unreadable: `broker_unavailable`.",
    503: "The broker is rate-limiting us: `broker_rate_limited`; see `Retry-After`.",
    504: "The broker did not answer in time: `broker_timeout`.",
}
_WAIT_STATUSES = (409, 429, 503)
#: What every endpoint that reads an account can answer, besides success.
ACCOUNT_ERRORS = (400, 401, 403, 404, 422, 429, 500, 502, 503, 504)


def errors(*codes: int, extra: dict[int, str] | None = None) -> dict[int, OpenApiResponse]:
    """Error answers in the one shape: the standard ``codes``, and ``extra`` described anew."""
    described = {code: ERRORS[code] for code in codes} | (extra or {})
    return {
        code: OpenApiResponse(response=ref("Error"), description=description)
        for code, description in described.items()
    }


def responses(
    ok: int, body: str, *codes: int, extra: dict[int, str] | None = None
) -> dict[int, Any]:
    """A success answer of component ``body`` and the error answers (see :func:`errors`)."""
    return {ok: ref(body), **errors(*codes, extra=extra)}


ACCOUNT_PARAMETER = OpenApiParameter(
    "account_id",
    type={"type": "string", "format": "uuid"},
    location=OpenApiParameter.QUERY,
    required=False,
    description="One of your linked accounts; default: your first.",
)


def describe(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Postprocessing hook: the description, the response components, Retry-After headers."""
    result["info"]["description"] = DESCRIPTION
    result.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for code, answer in operation.get("responses", {}).items():
                if int(code) in _WAIT_STATUSES:
                    answer["headers"] = _RETRY_AFTER
    return result
