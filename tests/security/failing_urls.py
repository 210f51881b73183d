"""The site's routes plus one that fails, to see the error page a failure gets."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from clera.urls import urlpatterns as site


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a failure the error page must not show")


urlpatterns = [path("test-failure", fail), *site]
