"""Root URL configuration."""

from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from clera.health import health
from portfolio.forms import AdminSignInForm
from portfolio.views import SignInView, admin_sign_in, home
from realtime import views as realtime_views
from realtime.api import TicketView

# The admin's sign-in under the login limits too (admin_sign_in answers its refusals 429).
admin.site.login_form = AdminSignInForm

urlpatterns = [
    path("", home, name="home"),
    # Browsers ask for /favicon.ico on every page that names no icon (the API docs, say).
    path("favicon.ico", RedirectView.as_view(url=static("portfolio/favicon.svg"), permanent=True)),
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    # Before "admin/": the real-time statistics page, staff only like the rest of the admin.
    path(
        "admin/realtime/",
        admin.site.admin_view(realtime_views.websocket_stats_admin),
        name="realtime-admin-stats",
    ),
    path("admin/login/", admin_sign_in, name="admin-sign-in"),
    path("admin/", admin.site.urls),
    path("health", health, name="health"),
    path("metrics", realtime_views.metrics, name="metrics"),
    # Before "api/": the portfolio API answers every other /api/ path with its 404.
    path("api/realtime/ticket", TicketView.as_view(), name="realtime-ticket"),
    path(
        "api/admin/websocket-stats",
        realtime_views.WebsocketStatsView.as_view(),
        name="websocket-stats",
    ),
    path("api/", include("portfolio.api.urls")),
]
