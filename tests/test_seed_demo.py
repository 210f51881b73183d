"""Demo users are seeded from the real built-in sandbox, idempotently."""

import uuid

import pytest

from marketdata.sandbox_client import sandbox_accounts
from portfolio.models import BrokerageAccount
from portfolio.services import seed_demo_users

pytestmark = pytest.mark.django_db


def _links() -> list[tuple[str, str, str]]:
    return sorted(
        (b.user.username, str(b.account_id), b.label)
        for b in BrokerageAccount.objects.select_related("user")
    )


def test_demo_users_get_the_first_account_of_their_shape(sandbox_url, client):
    accounts = sandbox_accounts()
    shapes = {a["id"]: a["shape"] for a in accounts}
    first = {}
    for account in accounts:
        first.setdefault(account["shape"], account["id"])

    plan = dict(seed_demo_users())

    # "demo" holds two accounts; the per-shape users of those shapes get the next one along.
    assert plan["demo"] == [first["diversified"], first["crypto"]]
    for shape in first:
        (account_id,) = plan[f"demo-{shape.replace('_', '-')}"]
        assert shapes[account_id] == shape
        if shape not in ("diversified", "crypto"):
            assert account_id == first[shape]
    assert _links() == sorted(
        (user, i, shapes[i].replace("_", " ")) for user, ids in plan.items() for i in ids
    )
    assert client.login(username="demo", password="demo")
    assert client.login(username="demo-cash-only", password="demo")


def test_reseeding_changes_nothing(sandbox_url):
    seed_demo_users()
    before = _links()

    seed_demo_users()

    assert _links() == before


def test_reseeding_drops_links_to_accounts_the_sandbox_no_longer_has(sandbox_url):
    seed_demo_users()
    demo = BrokerageAccount.objects.filter(user__username="demo").first().user
    gone = BrokerageAccount.objects.create(user=demo, account_id=uuid.uuid4())

    seed_demo_users()

    assert not BrokerageAccount.objects.filter(pk=gone.pk).exists()
    assert demo.brokerage_accounts.count() == 2
