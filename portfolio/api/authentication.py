"""Browser sessions for the API, with CSRF failures in the API's error shape."""

from django.http import HttpRequest
from drf_spectacular.authentication import SessionScheme
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied

from portfolio.api.errors import CsrfFailed


class CsrfSessionAuthentication(SessionAuthentication):
    """DRF's session authentication (CSRF enforced on unsafe methods), saying so plainly."""

    def enforce_csrf(self, request: HttpRequest) -> None:
        try:
            super().enforce_csrf(request)
        except PermissionDenied as refused:
            raise CsrfFailed(details={"reason": str(refused.detail)}) from None


class CsrfSessionScheme(SessionScheme):
    """The session cookie in the OpenAPI schema, as for DRF's own session authentication."""

    target_class = CsrfSessionAuthentication
