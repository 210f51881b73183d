"""Brokerage account selectors and admin, on the real test database."""

import uuid

import pytest
from django.urls import reverse

from portfolio.models import BrokerageAccount
from portfolio.selectors import account_for_user, accounts_for_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="pw")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="pw")


def _link(user, label: str = "") -> BrokerageAccount:
    return BrokerageAccount.objects.create(user=user, account_id=uuid.uuid4(), label=label)


def test_first_linked_account_is_the_default(alice):
    first = _link(alice, "first")
    second = _link(alice, "second")

    assert list(accounts_for_user(alice)) == [first, second]
    assert account_for_user(alice, None) == first
    assert account_for_user(alice, str(second.account_id)) == second


def test_user_without_accounts_gets_none(alice):
    assert account_for_user(alice, None) is None


def test_another_users_account_is_not_returned(alice, bob):
    _link(alice)
    bobs = _link(bob)

    assert account_for_user(alice, str(bobs.account_id)) is None


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "", "123", "../../etc/passwd"])
def test_malformed_account_id_is_none_not_an_error(alice, bad_id):
    _link(alice)

    assert account_for_user(alice, bad_id) is None


def test_admin_changelist_renders_for_superuser(admin_client, alice):
    _link(alice, "main")

    response = admin_client.get(reverse("admin:portfolio_brokerageaccount_changelist"))

    assert response.status_code == 200
    assert b"alice" in response.content


def test_user_admin_shows_accounts_inline(admin_client, alice):
    account = _link(alice, "main")

    response = admin_client.get(reverse("admin:auth_user_change", args=[alice.pk]))

    assert response.status_code == 200
    assert str(account.account_id).encode() in response.content
