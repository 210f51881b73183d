"""The browser's entry points: sign-in (with the demo logins in sandbox mode; the admin's too),
under the login limits, and the page. Their Content-Security-Policy is the site's one
(CONTENT_SECURITY_POLICY in clera/settings.py, set on every answer by django-csp)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from portfolio import selectors
from portfolio.forms import SignInForm, refused_status
from portfolio.services import DEMO_PASSWORD, DEMO_USERNAME


class SignInView(LoginView):
    """Django's sign-in; with the built-in sandbox it also lists the demo logins that exist.
    Too many failures answer 429 with the form's message."""

    template_name = "registration/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_invalid(self, form: SignInForm) -> HttpResponse:
        return refused_status(super().form_invalid(form))

    def get_context_data(self, **kwargs: object) -> dict:
        context = super().get_context_data(**kwargs)
        if settings.USE_BUILTIN_SANDBOX:
            demo = get_user_model().objects.filter(username__startswith=DEMO_USERNAME)
            context["demo_logins"] = list(
                demo.order_by("username").values_list("username", flat=True)
            )
            context["demo_password"] = DEMO_PASSWORD
        return context


def admin_sign_in(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """The admin's own sign-in (its form is AdminSignInForm: clera/urls.py), refusals as 429."""
    return refused_status(admin.site.login(request, extra_context))


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
                for name in (
                    "summary",
                    "positions",
                    "analytics",
                    "history",
                    "orders",
                    "funds",
                    "risk",
                    "frontier",
                    "performance",
                )
            },
            "poll_ms": round(settings.PAGE_POLL_INTERVAL * 1000),
            "analytics_refresh_ms": round(settings.PAGE_ANALYTICS_REFRESH * 1000),
            "funds_max": f"{settings.FUNDS_MAX_AMOUNT:.2f}",
            "login_url": reverse("login"),
        }
    return render(
        request,
        "portfolio/page.html",
        {"accounts": accounts, "account": account, "page": page},
    )
