"""Routes of the portfolio API, mounted at /api/ by clera/urls.py."""

from django.urls import path, re_path, register_converter

from portfolio.api import views
from portfolio.api.ops_access import DocsView, SchemaView


class SymbolOrIdConverter:
    """A symbol (AAPL, BRK.B, BTC/USD: one slash allowed) or an asset id."""

    regex = r"[A-Za-z0-9][A-Za-z0-9.\-]{0,63}(?:/[A-Za-z0-9][A-Za-z0-9.\-]{0,63})?"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(SymbolOrIdConverter, "symbol_or_id")

urlpatterns = [
    path("auth/token", views.TokenView.as_view(), name="api-token"),
    path("portfolio/summary", views.SummaryView.as_view(), name="api-summary"),
    path("portfolio/positions", views.PositionsView.as_view(), name="api-positions"),
    path("portfolio/analytics", views.AnalyticsView.as_view(), name="api-analytics"),
    path("portfolio/history", views.HistoryView.as_view(), name="api-history"),
    path("portfolio/risk", views.RiskView.as_view(), name="api-risk"),
    path("portfolio/frontier", views.FrontierView.as_view(), name="api-frontier"),
    path("portfolio/performance", views.PerformanceView.as_view(), name="api-performance"),
    path("portfolio/orders", views.OrdersView.as_view(), name="api-orders"),
    path("portfolio/activities", views.ActivitiesView.as_view(), name="api-activities"),
    path("portfolio/funds", views.FundsView.as_view(), name="api-funds"),
    path("assets/<symbol_or_id:symbol_or_id>", views.AssetView.as_view(), name="api-asset"),
    # DEBUG, staff, or the OPS_TOKEN bearer token (portfolio/api/ops_access.py).
    path("schema", SchemaView.as_view(), name="api-schema"),
    path("docs", DocsView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^[\s\S]*$", views.NotFoundView.as_view(), name="api-not-found"),  # even a newline
]
