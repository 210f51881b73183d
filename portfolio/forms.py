"""The two sign-in forms, the site's and the admin's, both under the login limits
(portfolio/login_limits.py), and the 429 their pages answer when a limit refused."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponse

from portfolio import login_limits

REFUSED = "too_many_failures"


class LimitedSignIn(forms.Form):
    """Mixed into an AuthenticationForm: a locked username or client is refused before the
    password is checked (``retry_after`` then says how long for); a wrong password is counted.
    A right password refused for another reason (an inactive user, a non-staff user at the
    admin) is not a failure."""

    retry_after: int | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        try:
            login_limits.check(self.request, username)
        except login_limits.LoginRefused as refused:
            self.retry_after = refused.retry_after
            raise forms.ValidationError(refused.message, code=REFUSED) from None
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if self.get_user() is None:
                login_limits.failed(self.request, username)
            raise
        login_limits.succeeded(self.request, username)
        return cleaned


class SignInForm(LimitedSignIn, AuthenticationForm):
    """The site's sign-in."""


class AdminSignInForm(LimitedSignIn, AdminAuthenticationForm):
    """The admin's sign-in (AdminSite.login_form)."""


def refused_status(response: HttpResponse) -> HttpResponse:
    """A sign-in page whose form the login limits refused, as 429 with Retry-After."""
    form = (getattr(response, "context_data", None) or {}).get("form")
    retry_after = getattr(form, "retry_after", None)
    if retry_after:
        response.status_code = 429
        response["Retry-After"] = str(retry_after)
    return response
