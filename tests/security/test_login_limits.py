"""Password guessing meets a limit on every way in — the API's token endpoint, the sign-in form
and the admin's — per username and per client, whatever X-Forwarded-For a client makes up."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords", "redis_client")]

PASSWORD = "right-password"
WAYS_IN = ("api", "form", "admin")


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _address() -> str:
    """A client address no other test uses (TEST-NET-3), so counters never meet."""
    return f"203.0.113.{uuid.uuid4().int % 250 + 1}"


def attempt(way: str, address: str, username: str, password: str, **headers: str):
    """One sign-in through ``way`` from the client at ``address``."""
    credentials = {"username": username, "password": password}
    if way == "api":
        return APIClient(REMOTE_ADDR=address).post(
            "/api/auth/token", credentials, format="json", **headers
        )
    path = reverse("login") if way == "form" else "/admin/login/"
    return Client(REMOTE_ADDR=address).post(path, credentials, **headers)


def signed_in(way: str, answer) -> bool:
    return answer.status_code == (200 if way == "api" else 302)


def assert_refused(way: str, answer) -> None:
    """Refused for too many failures: 429 with Retry-After, said in the way's own words."""
    assert answer.status_code == 429, (answer.status_code, answer.content[:300])
    assert int(answer["Retry-After"]) > 0
    if way == "api":
        assert answer.json()["error"]["code"] == "throttled"
        assert "Too many failed sign-ins" in answer.json()["error"]["message"]
    else:
        page = answer.content.decode()
        assert "Too many failed sign-ins" in page and "Traceback" not in page


@pytest.fixture
def user(django_user_model) -> Callable[..., str]:
    def make() -> str:
        username = _unique("investor")
        django_user_model.objects.create_user(username, password=PASSWORD, is_staff=True)
        return username

    return make


def test_made_up_forwarded_for_headers_do_not_escape_the_token_throttle() -> None:
    """The audit's attack: 25 wrong passwords, each with another X-Forwarded-For."""
    address = _address()
    answers = [
        attempt("api", address, _unique("nobody"), "guess", HTTP_X_FORWARDED_FOR=f"10.9.8.{i}")
        for i in range(25)
    ]

    statuses = [a.status_code for a in answers]
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}


def test_behind_one_proxy_the_address_the_proxy_saw_counts(settings) -> None:
    settings.NUM_PROXIES = 1
    settings.API_AUTH_THROTTLE_RATE = "2/minute"
    proxy = _address()

    def guess(made_up: int, seen_by_proxy: str) -> int:
        forwarded = f"10.9.8.{made_up}, {seen_by_proxy}"
        return attempt(
            "api", proxy, _unique("nobody"), "guess", HTTP_X_FORWARDED_FOR=forwarded
        ).status_code

    assert [guess(i, "198.51.100.20") for i in range(3)] == [401, 401, 429]
    assert guess(9, "198.51.100.21") == 401  # another client behind the same proxy


@pytest.mark.parametrize("way", WAYS_IN)
def test_a_username_guessed_from_many_clients_is_locked(way: str, user, settings) -> None:
    settings.API_AUTH_THROTTLE_RATE = "none"
    victim, bystander = user(), user()

    failures = [attempt(way, _address(), victim, f"guess-{i}") for i in range(5)]
    locked = attempt(way, _address(), victim, PASSWORD)  # even the right password

    assert not any(signed_in(way, a) for a in failures)
    assert all(a.status_code in (200, 401) for a in failures)
    assert_refused(way, locked)
    assert signed_in(way, attempt(way, _address(), bystander, PASSWORD))


@pytest.mark.parametrize("way", WAYS_IN)
def test_a_client_trying_many_usernames_is_locked(way: str, user, settings) -> None:
    settings.API_AUTH_THROTTLE_RATE = "none"
    address = _address()

    failures = [
        attempt(way, address, _unique("nobody"), "guess", HTTP_X_FORWARDED_FOR=f"10.1.1.{i}")
        for i in range(20)
    ]
    locked = attempt(way, address, user(), PASSWORD)

    assert not any(signed_in(way, a) for a in failures)
    assert_refused(way, locked)
    assert signed_in(way, attempt(way, _address(), user(), PASSWORD))  # other clients may


def test_the_audits_25_wrong_passwords_on_the_form_end_in_refusals(user) -> None:
    username, address = user(), _address()

    answers = [attempt("form", address, username, "nope") for _ in range(25)]

    assert [a.status_code for a in answers[:5]] == [200] * 5
    for answer in answers[5:]:
        assert_refused("form", answer)


def test_signing_in_clears_the_usernames_failures(user, settings) -> None:
    settings.API_AUTH_THROTTLE_RATE = "none"
    username = user()

    for _ in range(4):
        attempt("api", _address(), username, "nope")
    assert signed_in("api", attempt("api", _address(), username, PASSWORD))
    answers = [attempt("api", _address(), username, "nope") for _ in range(4)]

    assert [a.status_code for a in answers] == [401] * 4
    assert signed_in("api", attempt("api", _address(), username, PASSWORD))
