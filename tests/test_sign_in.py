"""The browser's way in: sign-in lists the demo logins in sandbox mode; home needs a login."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_home_sends_a_stranger_to_sign_in(client) -> None:
    answer = client.get("/")
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("login"))


def test_sign_in_lists_the_demo_logins_in_sandbox_mode(client, django_user_model) -> None:
    django_user_model.objects.create_user("demo", password="demo")
    django_user_model.objects.create_user("demo-bonds", password="demo")
    django_user_model.objects.create_user("alice", password="secret-pass")
    page = client.get(reverse("login")).content.decode()
    assert "<code>demo</code>" in page and "<code>demo-bonds</code>" in page
    assert "alice" not in page


def test_no_demo_logins_with_real_alpaca_keys(client, django_user_model, settings) -> None:
    settings.USE_BUILTIN_SANDBOX = False
    django_user_model.objects.create_user("demo", password="demo")
    assert "Demo logins" not in client.get(reverse("login")).content.decode()


def test_signing_in_leads_to_the_portfolio_page(client, django_user_model) -> None:
    django_user_model.objects.create_user("demo", password="demo")
    answer = client.post(reverse("login"), {"username": "demo", "password": "demo"})
    assert answer.status_code == 302 and answer["Location"] == reverse("home")
    assert client.get("/").templates[0].name == "portfolio/page.html"


def test_a_wrong_password_is_said_plainly(client, django_user_model) -> None:
    django_user_model.objects.create_user("demo", password="demo")
    answer = client.post(reverse("login"), {"username": "demo", "password": "nope"})
    assert answer.status_code == 200
    assert "didn't match" in answer.content.decode()
