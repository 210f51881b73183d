"""The browser's entry points: sign-in (with the demo logins in sandbox mode) and the page."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from portfolio import selectors
from portfolio.services import DEMO_PASSWORD, DEMO_USERNAME

# The page loads nothing from elsewhere and runs no inline script: a CDN reference or an
# injected script would be refused by the browser (and show up as a console error in tests).
PAGE_CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class SignInView(LoginView):
    """Django's sign-in; with the built-in sandbox it also lists the demo logins that exist."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: object) -> dict:
        context = super().get_context_data(**kwargs)
        if settings.USE_BUILTIN_SANDBOX:
            demo = get_user_model().objects.filter(username__startswith=DEMO_USERNAME)
            context["demo_logins"] = list(
                demo.order_by("username").values_list("username", flat=True)
            )
            context["demo_password"] = DEMO_PASSWORD
        return context


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The portfolio page for one of the user's accounts: ``?account=<id>``, default the first.

    Everything on it is loaded by the browser from the API and the account's socket; this
    only says which account and where those are.
    """
    chosen = request.GET.get("account")
    account = selectors.account_for_user(request.user, chosen)
    if account is None and chosen is not None:
        raise Http404("No such account of yours.")
    accounts = [
        {"id": str(link.account_id), "label": link.label or f"Account {str(link.account_id)[:8]}"}
        for link in selectors.accounts_for_user(request.user)
    ]
    page = None
    if account is not None:
        page = {
            "account_id": str(account.account_id),
            "socket_path": f"/ws/portfolio/{account.account_id}",
            "api": {
                name: reverse(f"api-{name}")
                for name in ("summary", "positions", "analytics", "history", "orders", "funds")
            },
            "poll_ms": round(settings.PAGE_POLL_INTERVAL * 1000),
            "analytics_refresh_ms": round(settings.PAGE_ANALYTICS_REFRESH * 1000),
            "funds_max": f"{settings.FUNDS_MAX_AMOUNT:.2f}",
            "login_url": reverse("login"),
        }
    response = render(
        request,
        "portfolio/page.html",
        {"accounts": accounts, "account": account, "page": page},
    )
    response["Content-Security-Policy"] = PAGE_CONTENT_SECURITY_POLICY
    return response
