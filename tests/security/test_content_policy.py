"""One Content-Security-Policy on every HTML page: what the browser may load and run is the
site's own files only, so an injected script or a foreign resource is refused."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

OPS_TOKEN = "ops-token-for-content-policy"
PAGES = [
    "/accounts/login/",
    "/admin/login/",
    "/api/docs",
    "/no-such-page",
    "/test-failure",
]


def _directives(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.fixture
def browser(settings) -> Client:
    settings.OPS_TOKEN = OPS_TOKEN
    client = Client(HTTP_AUTHORIZATION=f"Bearer {OPS_TOKEN}")
    client.raise_request_exception = False
    return client


@pytest.mark.urls("tests.security.failing_urls")
@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_the_policy(browser: Client, path: str) -> None:
    answer = browser.get(path)

    assert answer["Content-Type"].startswith("text/html")
    policy = _directives(answer["Content-Security-Policy"])
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "a failure the error page must not show" not in answer.content.decode()


def test_the_signed_in_page_carries_the_same_policy(browser: Client, django_user_model) -> None:
    browser.force_login(django_user_model.objects.create_user("csp-investor"))
    page = browser.get("/")["Content-Security-Policy"]

    assert page == browser.get("/accounts/login/")["Content-Security-Policy"]


def test_the_sign_in_page_has_nothing_inline_the_policy_would_refuse(browser: Client) -> None:
    html = browser.get("/accounts/login/").content.decode()

    assert "<style" not in html and " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
