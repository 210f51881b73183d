"""The browser's entry points: sign-in (with the demo logins in sandbox mode) and home."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from portfolio.services import DEMO_PASSWORD, DEMO_USERNAME


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
    """Until the portfolio page lands, signed-in users go to the interactive API docs."""
    return redirect("api-docs")
