"""The portfolio page as the server renders it: which account, where its data lives, and a
policy that lets the browser load nothing from elsewhere. The widgets themselves are tested in
real Chromium (tests/browser/)."""

import json
import re
import uuid

import pytest
from django.urls import reverse

from portfolio.models import BrokerageAccount

pytestmark = pytest.mark.django_db


@pytest.fixture
def investor(client, django_user_model):
    user = django_user_model.objects.create_user("investor")
    first = BrokerageAccount.objects.create(user=user, account_id=uuid.uuid4(), label="Main")
    second = BrokerageAccount.objects.create(user=user, account_id=uuid.uuid4())
    client.force_login(user)
    return first, second


def config(answer) -> dict:
    found = re.search(r'<script id="page-config" type="application/json">(.*?)</script>',
                      answer.content.decode(), re.S)  # fmt: skip
    assert found, "the page carries its configuration"
    return json.loads(found.group(1))


def test_the_page_shows_the_first_account_by_default(client, investor) -> None:
    first, _ = investor
    answer = client.get(reverse("home"))
    page = config(answer)
    assert page["account_id"] == str(first.account_id)
    assert page["socket_path"] == f"/ws/portfolio/{first.account_id}"
    assert page["api"]["summary"] == "/api/portfolio/summary"
    assert page["poll_ms"] == 5000 and page["analytics_refresh_ms"] == 300_000
    assert page["funds_max"] == "50000.00"


def test_another_of_ones_accounts_is_chosen_by_query(client, investor) -> None:
    _, second = investor
    answer = client.get(reverse("home"), {"account": str(second.account_id)})
    assert config(answer)["account_id"] == str(second.account_id)
    assert 'name="account"' in answer.content.decode()  # the switcher lists both


@pytest.mark.parametrize("chosen", [str(uuid.uuid4()), "not-a-uuid", ""])
def test_an_account_not_ones_own_is_not_found(client, investor, chosen) -> None:
    assert client.get(reverse("home"), {"account": chosen}).status_code == 404


def test_someone_elses_account_is_not_found(client, investor, django_user_model) -> None:
    other = django_user_model.objects.create_user("other")
    theirs = BrokerageAccount.objects.create(user=other, account_id=uuid.uuid4())
    assert client.get(reverse("home"), {"account": str(theirs.account_id)}).status_code == 404


def test_without_an_account_the_page_says_so(client, django_user_model) -> None:
    client.force_login(django_user_model.objects.create_user("newcomer"))
    answer = client.get(reverse("home"))
    assert answer.status_code == 200
    assert "No brokerage account yet" in answer.content.decode()
    assert "page-config" not in answer.content.decode()


def test_everything_the_page_loads_is_its_own(client, investor) -> None:
    answer = client.get(reverse("home"))
    html = answer.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)
    policy = answer["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "<script>" not in html  # no inline script: the policy would refuse it


def test_the_chart_library_and_page_scripts_are_served(client, investor) -> None:
    html = client.get(reverse("home")).content.decode()
    for path in re.findall(r'<script[^>]* src="([^"]+)"', html):
        served = client.get(path)
        assert served.status_code == 200, path
        assert b"".join(served.streaming_content if served.streaming else [served.content])


def test_favicon_points_at_the_served_icon(client) -> None:
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301
    assert client.get(answer["Location"]).status_code == 200
