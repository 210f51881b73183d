"""The portfolio REST API's views: check the caller and the parameters, call one selector or
service, answer its body. Errors are raised, and shaped by ``portfolio.api.errors``."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.http import QueryDict
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio import insights, login_limits, selectors, services
from portfolio.api import pagination, schema, serializers
from portfolio.api.errors import ApiError
from portfolio.api.throttling import TokenRequestThrottle, UserThrottle
from portfolio.errors import IdempotencyKeyRequired, InvalidParameter, NotFound
from portfolio.history import PERIODS, InvalidPeriod
from portfolio.insights import PERFORMANCE_PERIODS


class InvalidCredentials(ApiError):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "invalid_credentials"
    default_detail = "That username and password do not match an active user."


def _valid(serializer_class: type, data: object) -> dict:
    """The serializer's validated data, or a 400. A query string is read as a plain dict, so
    an empty value (``?limit=``) is a wrong value, not a missing one."""
    if isinstance(data, QueryDict):
        repeated = sorted(name for name, values in data.lists() if len(values) > 1)
        if repeated:
            raise InvalidParameter(
                f"{repeated[0]}: give it once.",
                details={"fields": {name: ["given more than once."] for name in repeated}},
            )
        data = data.dict()
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class AccountView(APIView):
    """A view over one of the caller's accounts, chosen by ``account_id``."""

    def account_id(self, request: Request) -> str:
        """The requested account's id if it is linked to the caller; 404 otherwise."""
        chosen = _valid(serializers.AccountQuery, request.query_params).get("account_id")
        return str(selectors.linked_account(request.user, chosen).account_id)


class TokenView(APIView):
    """Trade a username and password for an API token; DELETE revokes the caller's token.
    Password guessing meets the token throttle and the login limits (429, Retry-After)."""

    def get_permissions(self) -> list:
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def get_throttles(self) -> list:
        return [TokenRequestThrottle()] if self.request.method == "POST" else [UserThrottle()]

    @extend_schema(
        operation_id="auth_token_create",
        summary="Get an API token",
        description="Send it back as `Authorization: Token <token>`. The same user always "
        "gets the same token until it is revoked.",
        request=serializers.TokenRequest,
        responses=schema.responses(
            200,
            "Token",
            400,
            403,
            415,
            429,
            500,
            extra={401: "Wrong username or password: `invalid_credentials`."},
        ),
        auth=[],
    )
    def post(self, request: Request) -> Response:
        credentials = _valid(serializers.TokenRequest, request.data)
        username = credentials["username"]
        try:
            login_limits.check(request, username)
        except login_limits.LoginRefused as refused:
            raise Throttled(wait=refused.retry_after, detail=refused.reason) from None
        user = authenticate(request, username=username, password=credentials["password"])
        if user is None:
            login_limits.failed(request, username)
            raise InvalidCredentials()
        login_limits.succeeded(request, username)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    @extend_schema(
        operation_id="auth_token_destroy",
        summary="Revoke your API token",
        responses={204: None, **schema.errors(401, 403, 429, 500)},
    )
    def delete(self, request: Request) -> Response:
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SummaryView(AccountView):
    @extend_schema(
        summary="Total value and today's return",
        description="Total value (cash plus positions at the latest prices), and today's "
        "return against `last_equity`, the account's equity at the previous close. The "
        "same calculation as the live push, so the two always agree.",
        parameters=[schema.ACCOUNT_PARAMETER],
        responses=schema.responses(200, "Summary", *schema.ACCOUNT_ERRORS),
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.account_summary(self.account_id(request)))


class PositionsView(AccountView):
    @extend_schema(
        summary="Holdings",
        description="Every open position with its name, class, sector and industry, quantity, "
        "average cost, current price, market value, unrealized P/L, today's change and weight "
        "in the portfolio (of the total value, cash included). An empty list is valid.",
        parameters=[schema.ACCOUNT_PARAMETER],
        responses=schema.responses(200, "Positions", *schema.ACCOUNT_ERRORS),
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.account_positions(self.account_id(request)))


class AnalyticsView(AccountView):
    @extend_schema(
        summary="Risk, diversification and allocation",
        description="Risk and diversification scores (0-10, one decimal) with a label and a "
        "plain sentence, and allocation by asset class, sector and industry with cash. The "
        "definitions are in this API's description, under Analytics.",
        parameters=[schema.ACCOUNT_PARAMETER],
        responses=schema.responses(200, "Analytics", *schema.ACCOUNT_ERRORS),
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.account_analytics(self.account_id(request)))


class HistoryView(AccountView):
    @extend_schema(
        summary="Performance history",
        description="Equity over a period, or between `start` and `end`, with profit and "
        "loss and a time-weighted return that are net of deposits and withdrawals (Alpaca's "
        "own percentage counts a deposit as profit; ours does not), the period's change and "
        "the all-time change. MAX is since the account was opened. Cached briefly.",
        parameters=[
            schema.ACCOUNT_PARAMETER,
            OpenApiParameter(
                "period",
                enum=PERIODS,
                description="Chart period (default 1M); not with start/end.",
            ),
            OpenApiParameter(
                "start",
                type=str,
                description="Range start: a date (midnight New York) or a date-time with a "
                "time zone. With `end`.",
            ),
            OpenApiParameter("end", type=str, description="Range end; with `start`."),
            OpenApiParameter(
                "benchmark",
                type={"type": "string", "pattern": f"^{serializers.SYMBOL_PATTERN}$"},
                description="A symbol to compare with (e.g. SPY): adds its series rebased to "
                "the account's first value, its return and the excess return.",
            ),
        ],
        responses=schema.responses(200, "History", *schema.ACCOUNT_ERRORS),
    )
    def get(self, request: Request) -> Response:
        account_id = self.account_id(request)
        query = _valid(serializers.HistoryQuery, request.query_params)
        benchmark = query.pop("benchmark", None)
        try:
            body = selectors.account_history(account_id, **query)
        except InvalidPeriod as invalid:
            raise InvalidParameter(str(invalid)) from None
        if benchmark is not None:
            body = insights.with_benchmark(body, benchmark)
        return Response(body)


_CONVENTIONS_NOTE = (
    "Daily simple returns of adjusted closes over the trailing ANALYTICS_WINDOW_DAYS trading "
    "days, annualised ×252 (volatility ×√252); every answer states its conventions. The "
    "methods, with worked examples, are in this API's description and docs/analytics.md. "
    "Computed from daily data, cached for ANALYTICS_CACHE_TTL seconds."
)


class RiskView(AccountView):
    @extend_schema(
        summary="Risk decomposition and correlation",
        description="Portfolio volatility; per holding its weight, volatility, beta against "
        "the benchmark, contribution to volatility and share of it (the shares sum to 100 %); "
        "the correlation matrix of the holdings' returns; concentration warnings. Options and "
        "holdings with too little history are listed apart, with the reason. " + _CONVENTIONS_NOTE,
        parameters=[schema.ACCOUNT_PARAMETER],
        responses=schema.responses(200, "Risk", *schema.ACCOUNT_ERRORS),
    )
    def get(self, request: Request) -> Response:
        return Response(insights.account_risk(self.account_id(request)))


class FrontierView(AccountView):
    @extend_schema(
        summary="Efficient frontier",
        description="Long-only, fully invested portfolios of the current holdings (cash "
        "apart) from minimum volatility to maximum return, with the current portfolio, the "
        "minimum-volatility and maximum-Sharpe portfolios and how much better the frontier "
        "does at your volatility or your return. Past returns do not predict future ones. "
        + _CONVENTIONS_NOTE,
        parameters=[schema.ACCOUNT_PARAMETER],
        responses=schema.responses(200, "Frontier", *schema.ACCOUNT_ERRORS),
    )
    def get(self, request: Request) -> Response:
        return Response(insights.account_frontier(self.account_id(request)))


class PerformanceView(AccountView):
    @extend_schema(
        summary="Performance statistics",
        description="Over a period of daily history: time-weighted and money-weighted "
        "returns (for the period and annualised), volatility, maximum drawdown with its "
        "dates, Sharpe, Sortino, and beta and alpha against a benchmark. " + _CONVENTIONS_NOTE,
        parameters=[
            schema.ACCOUNT_PARAMETER,
            OpenApiParameter(
                "period",
                enum=PERFORMANCE_PERIODS,
                description="Default 1Y; MAX is since the account was opened.",
            ),
            OpenApiParameter(
                "benchmark",
                type={"type": "string", "pattern": f"^{serializers.SYMBOL_PATTERN}$"},
                description="Default ANALYTICS_BENCHMARK (SPY).",
            ),
        ],
        responses=schema.responses(200, "Performance", *schema.ACCOUNT_ERRORS),
    )
    def get(self, request: Request) -> Response:
        account_id = self.account_id(request)
        query = _valid(serializers.PerformanceQuery, request.query_params)
        return Response(insights.account_performance(account_id, **query))


class OrdersView(AccountView):
    @extend_schema(
        summary="Orders",
        description="Orders by submission time, one page at a time.",
        parameters=[
            schema.ACCOUNT_PARAMETER,
            OpenApiParameter("status", enum=("open", "closed", "all"), description="Default all."),
            OpenApiParameter("side", enum=("buy", "sell")),
            OpenApiParameter(
                "symbols",
                type={"type": "string", "pattern": serializers.SYMBOLS_PATTERN},
                description=f"Comma-separated symbols (at most {serializers.MAX_SYMBOLS}), "
                "e.g. AAPL,BTC/USD.",
            ),
            OpenApiParameter("limit", type=int, description="1-500, default 50."),
            OpenApiParameter("direction", enum=("desc", "asc"), description="Default desc."),
            OpenApiParameter("cursor", type=str, description="`next_cursor` of the last page."),
        ],
        responses=schema.responses(200, "Orders", *schema.ACCOUNT_ERRORS),
    )
    def get(self, request: Request) -> Response:
        account_id = self.account_id(request)
        query = _valid(serializers.OrdersQuery, request.query_params)
        page = selectors.account_orders(account_id, **query)
        return Response(
            {
                "account_id": account_id,
                "orders": page.items,
                "next_cursor": pagination.encode_order_cursor(page.next),
            }
        )


class ActivitiesView(AccountView):
    @extend_schema(
        summary="Account activities",
        description="The account's ledger, typed: fill, deposit, withdrawal, dividend, fee, "
        "other (Alpaca's own code is in `activity_type`). Newest first by default.",
        parameters=[
            schema.ACCOUNT_PARAMETER,
            OpenApiParameter(
                "type",
                type=str,
                description="Comma-separated types to keep, of: "
                + ", ".join(selectors.ACTIVITY_TYPES),
            ),
            OpenApiParameter("page_size", type=int, description="1-100, default 50."),
            OpenApiParameter("direction", enum=("desc", "asc"), description="Default desc."),
            OpenApiParameter("cursor", type=str, description="`next_cursor` of the last page."),
        ],
        responses=schema.responses(200, "Activities", *schema.ACCOUNT_ERRORS),
    )
    def get(self, request: Request) -> Response:
        account_id = self.account_id(request)
        query = _valid(serializers.ActivitiesQuery, request.query_params)
        page = selectors.account_activities(
            account_id,
            types=query.get("type"),
            page_size=query["page_size"],
            direction=query["direction"],
            cursor=query.get("cursor"),
        )
        return Response(
            {
                "account_id": account_id,
                "activities": page.items,
                "next_cursor": pagination.encode_activity_cursor(page.next),
            }
        )


class FundsView(AccountView):
    @extend_schema(
        summary="Transfers",
        description="The account's bank transfers, newest first, one page at a time.",
        parameters=[
            schema.ACCOUNT_PARAMETER,
            OpenApiParameter("limit", type=int, description="1-100, default 50."),
            OpenApiParameter("cursor", type=str, description="`next_cursor` of the last page."),
        ],
        responses=schema.responses(200, "Transfers", *schema.ACCOUNT_ERRORS),
    )
    def get(self, request: Request) -> Response:
        account_id = self.account_id(request)
        query = _valid(serializers.TransfersQuery, request.query_params)
        page = selectors.account_transfers(
            account_id, limit=query["limit"], offset=query.get("cursor", 0)
        )
        return Response(
            {
                "account_id": account_id,
                "transfers": page.items,
                "next_cursor": pagination.encode_offset_cursor(page.next),
            }
        )

    @extend_schema(
        summary="Add funds",
        description="Deposit `amount` dollars (a string of plain decimal text, more than 0, at "
        "most 2 decimal places, at most FUNDS_MAX_AMOUNT) from your linked bank account by "
        "ACH. In a sandbox a bank account is linked for you when there is none. The "
        "`Idempotency-Key` header is required: a retry with the same key answers the first "
        "deposit (201, same body, header `Idempotent-Replayed: true`) and never makes a "
        "second one; the same key with a different amount or account is refused (422).",
        parameters=[
            schema.ACCOUNT_PARAMETER,
            OpenApiParameter(
                "Idempotency-Key",
                type={"type": "string", "pattern": f"^{serializers.IDEMPOTENCY_KEY_PATTERN}$"},
                location=OpenApiParameter.HEADER,
                required=True,
                description="A unique string per deposit (printable ASCII, 1-255 characters).",
            ),
        ],
        request=serializers.FundsRequest,
        responses=schema.responses(
            201,
            "Transfer",
            *schema.ACCOUNT_ERRORS,
            415,
            extra={
                409: "Still processing this key (or, after a lost answer, another deposit of "
                "the same amount is still waiting for the broker's), or the bank link awaits "
                "approval: `request_in_progress`, `bank_link_pending`; retry with the same key.",
                422: "Refused: `idempotency_key_reused`, `bank_link_required`, or "
                "`broker_rejected` with the broker's reason.",
            },
        ),
    )
    def post(self, request: Request) -> Response:
        account_id = self.account_id(request)
        key = serializers.idempotency_key(request.headers.get("Idempotency-Key"))
        if key is None:
            raise IdempotencyKeyRequired()
        amount = _valid(serializers.FundsRequest, request.data)["amount"]
        result = services.add_funds(request.user, account_id, amount, key)
        headers = {"Idempotent-Replayed": "true"} if result.replayed else None
        return Response(result.body, status=status.HTTP_201_CREATED, headers=headers)


class AssetView(APIView):
    @extend_schema(
        summary="One asset",
        description="The broker's asset (a symbol such as `AAPL`, `BRK.B`, `BTC/USD`, or an "
        "asset id) with our sector, industry and fund category. An asset our classification "
        "table does not know says `Unclassified` and `classified: false`; nothing is guessed.",
        responses=schema.responses(200, "Asset", 401, 403, 404, 422, 429, 500, 502, 503, 504),
    )
    def get(self, request: Request, symbol_or_id: str) -> Response:
        return Response(selectors.asset_body(symbol_or_id))


class NotFoundView(APIView):
    """Any other address under /api/: a 404 in the API's shape, signed in or not."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        raise NotFound()

    post = put = patch = delete = get
