"""/metrics and the API's docs and schema: open with DEBUG; otherwise only to staff or to a
caller with the operations bearer token (OPS_TOKEN)."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_client")]

OPS_PATHS = ["/metrics", "/api/docs", "/api/docs?script=", "/api/schema"]
TOKEN = "ops-token-for-tests-0123456789"


@pytest.fixture(autouse=True)
def _ops_token(settings) -> None:
    settings.OPS_TOKEN = TOKEN


@pytest.mark.parametrize("path", OPS_PATHS)
def test_strangers_are_refused(path: str) -> None:
    answer = Client().get(path)

    assert answer.status_code == 401, answer.content[:200]
    assert "Bearer" in answer["WWW-Authenticate"]


@pytest.mark.parametrize("path", OPS_PATHS)
def test_a_wrong_or_empty_bearer_token_is_refused(path: str, settings) -> None:
    assert Client().get(path, HTTP_AUTHORIZATION="Bearer not-it").status_code == 401
    settings.OPS_TOKEN = ""
    assert Client().get(path, HTTP_AUTHORIZATION="Bearer ").status_code == 401


@pytest.mark.parametrize("path", OPS_PATHS)
def test_investors_who_are_not_staff_are_refused(path: str, django_user_model) -> None:
    client = Client()
    client.force_login(django_user_model.objects.create_user("not-staff"))

    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", OPS_PATHS)
def test_staff_and_the_bearer_token_are_let_in(path: str, django_user_model) -> None:
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("ops", is_staff=True))

    assert staff.get(path).status_code == 200
    assert Client().get(path, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


@pytest.mark.parametrize("path", OPS_PATHS)
def test_with_debug_anyone_may_look(path: str, settings) -> None:
    settings.DEBUG = True

    assert Client().get(path).status_code == 200
