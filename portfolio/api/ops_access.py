"""Who may read the operations views — /metrics (realtime/views.py), /api/docs and /api/schema:
anyone while DEBUG is on; otherwise a staff user, or a caller sending the OPS_TOKEN setting as
``Authorization: Bearer <token>`` (a Prometheus scraper, say). An empty OPS_TOKEN matches
nothing."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

#: The WWW-Authenticate challenge of a refusal to a caller without credentials.
CHALLENGE = 'Bearer realm="operations"'


def has_ops_token(request: HttpRequest) -> bool:
    """Whether the request carries the operations bearer token."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    expected = settings.OPS_TOKEN
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), expected.encode())
    )


def ops_allowed(request: HttpRequest) -> bool:
    """DEBUG, a staff user, or the operations bearer token."""
    return settings.DEBUG or request.user.is_staff or has_ops_token(request)


class OpsAccess(BasePermission):
    """DRF's form of :func:`ops_allowed`."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return ops_allowed(request)


class _OpsView(APIView):
    permission_classes = [OpsAccess]

    def get_authenticate_header(self, request: Request) -> str:
        return CHALLENGE


class SchemaView(_OpsView, SpectacularAPIView):
    """The OpenAPI schema (/api/schema)."""


class DocsView(_OpsView, SpectacularSwaggerSplitView):
    """Swagger UI (/api/docs), its start-up script served from the same address (``?script``)
    rather than inline, as the Content-Security-Policy requires."""
