"""Who may read what: every endpoint needs a login, and nobody reads an account not theirs."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

#: Every endpoint that reads or writes an account: (method, path, JSON body).
ACCOUNT_ENDPOINTS = [
    ("get", "/api/portfolio/summary", None),
    ("get", "/api/portfolio/positions", None),
    ("get", "/api/portfolio/analytics", None),
    ("get", "/api/portfolio/history", None),
    ("get", "/api/portfolio/risk", None),
    ("get", "/api/portfolio/frontier", None),
    ("get", "/api/portfolio/performance", None),
    ("get", "/api/portfolio/orders", None),
    ("get", "/api/portfolio/activities", None),
    ("get", "/api/portfolio/funds", None),
    ("post", "/api/portfolio/funds", {"amount": "10.00"}),
]
ALL_ENDPOINTS = [
    *ACCOUNT_ENDPOINTS,
    ("get", "/api/assets/AAPL", None),
    ("delete", "/api/auth/token", None),
]


def call(client, method: str, path: str, body: dict | None, **query: str):
    if query:
        path = f"{path}?" + "&".join(f"{k}={v}" for k, v in query.items())
    return getattr(client, method)(
        path, body, format="json", HTTP_IDEMPOTENCY_KEY=f"key-{uuid.uuid4()}"
    )


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


@pytest.mark.parametrize(("method", "path", "body"), ALL_ENDPOINTS)
def test_no_login_is_401(method, path, body):
    response = call(APIClient(), method, path, body)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(("method", "path", "body"), ALL_ENDPOINTS)
def test_bad_token_is_401(method, path, body):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    assert_error(call(client, method, path, body), 401, "authentication_failed")


@pytest.mark.parametrize(("method", "path", "body"), ACCOUNT_ENDPOINTS)
def test_another_users_account_is_404_like_no_account_at_all(
    method, path, body, link, client_for, shape_account
):
    mine = link(shape_account["cash_only"])
    link(shape_account["diversified"])  # someone else's
    client = client_for(mine)

    theirs = call(client, method, path, body, account_id=shape_account["diversified"])
    nobodys = call(client, method, path, body, account_id=str(uuid.uuid4()))

    assert_error(theirs, 404, "account_not_found")
    assert theirs.json() == nobodys.json()


@pytest.mark.parametrize(("method", "path", "body"), ACCOUNT_ENDPOINTS)
def test_a_user_without_an_account_is_told_so(method, path, body, link, client_for):
    body = assert_error(call(client_for(link()), method, path, body), 404, "no_account")

    assert "No brokerage account is linked" in body["error"]["message"]


def test_a_malformed_account_id_is_400(link, client_for, shape_account):
    client = client_for(link(shape_account["cash_only"]))

    body = assert_error(
        client.get("/api/portfolio/summary?account_id=42"), 400, "invalid_parameter"
    )

    assert body["error"]["message"].startswith("account_id:")


def test_second_account_is_chosen_with_account_id(link, client_for, shape_account):
    user = link(shape_account["cash_only"], shape_account["one_stock"])
    client = client_for(user)

    first = client.get("/api/portfolio/summary").json()
    second = client.get(f"/api/portfolio/summary?account_id={shape_account['one_stock']}").json()

    assert first["account_id"] == shape_account["cash_only"]
    assert second["account_id"] == shape_account["one_stock"]


def test_token_for_username_and_password(django_user_model, redis_client):
    django_user_model.objects.create_user(username="ann", password="s3cret-pw")
    client = APIClient()

    wrong = client.post("/api/auth/token", {"username": "ann", "password": "nope"}, format="json")
    missing = client.post("/api/auth/token", {"username": "ann"}, format="json")
    right = client.post(
        "/api/auth/token", {"username": "ann", "password": "s3cret-pw"}, format="json"
    )

    assert_error(wrong, 401, "invalid_credentials")
    assert_error(missing, 400, "invalid_parameter")["error"]["message"].startswith("password:")
    assert right.status_code == 200
    token = right.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert_error(client.get("/api/portfolio/summary"), 404, "no_account")  # signed in
    assert client.delete("/api/auth/token").status_code == 204
    assert_error(client.get("/api/portfolio/summary"), 401, "authentication_failed")


def test_token_requests_are_throttled_per_ip(settings, redis_client):
    settings.API_AUTH_THROTTLE_RATE = "2/minute"
    client = APIClient()
    guess = {"username": "nobody", "password": "guess"}

    answers = [client.post("/api/auth/token", guess, format="json") for _ in range(3)]

    assert [a.status_code for a in answers] == [401, 401, 429]
    assert_error(answers[2], 429, "throttled")
    assert int(answers[2]["Retry-After"]) >= 1


def test_requests_are_throttled_per_user(settings, redis_client, link, client_for, shape_account):
    settings.API_THROTTLE_RATE = "2/minute"
    busy = client_for(link(shape_account["cash_only"]))
    other = client_for(link(shape_account["one_stock"]))

    answers = [busy.get("/api/assets/AAPL") for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2]["Retry-After"]) >= 1
    assert other.get("/api/assets/AAPL").status_code == 200  # per user, not global


def test_browser_session_needs_csrf_for_posts(django_user_model, link, shape_account, redis_client):
    user = link(shape_account["cash_only"])
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    read = browser.get("/api/portfolio/summary")
    forged = browser.post(
        "/api/portfolio/funds",
        {"amount": "0"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    browser.get("/admin/login/")  # any page that sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    with_token = browser.post(
        "/api/portfolio/funds",
        {"amount": "0"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k1",
        HTTP_X_CSRFTOKEN=token,
    )

    assert read.status_code == 200
    assert_error(forged, 403, "csrf_failed")
    assert_error(with_token, 400, "invalid_parameter")  # past CSRF, on to the amount


def test_unknown_api_address_is_a_json_404_for_anyone():
    assert_error(APIClient().get("/api/portfolio/nothing-here"), 404, "not_found")
    assert_error(APIClient().post("/api/nope", {}, format="json"), 404, "not_found")
    assert_error(APIClient().get("/api/assets/AAPL%0A"), 404, "not_found")  # a newline too
