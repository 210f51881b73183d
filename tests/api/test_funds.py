"""Adding funds: validated amounts, a required Idempotency-Key, and never two deposits for one
key — not on a retry, not on concurrent double-submits, not when Alpaca's answer is lost."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from rest_framework.authtoken.models import Token

from portfolio.models import FundsTransfer
from tests.api.test_access import assert_error

FUNDS = "/api/portfolio/funds"


def new_transfers(raw, account: str, before: set[str]) -> list[dict]:
    return [t for t in raw(f"/accounts/{account}/transfers", limit=500) if t["id"] not in before]


def transfer_ids(raw, account: str) -> set[str]:
    return {t["id"] for t in raw(f"/accounts/{account}/transfers", limit=500)}


def odd_amount() -> str:
    """An amount no other deposit in this run will have."""
    return f"{random.randint(100, 4999)}.{random.randint(10, 99)}"


@pytest.fixture
def depositor(link, client_for, spare_accounts, redis_client):
    account = spare_accounts[0]
    return account, client_for(link(account))


def post(client, amount: object, key: str | None = "k", **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(FUNDS, {"amount": amount, **extra}, format="json", **headers)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("0", "more than 0"),
        ("-5.00", "more than 0"),
        ("10.001", "at most 2 decimal places"),
        ("50000.01", "at most 50000"),
        ("ten", "amount in dollars"),
        (True, "amount in dollars"),
        (None, "may not be null"),
        ("NaN", "amount in dollars"),
    ],
)
def test_amount_is_validated(depositor, amount, says):
    _, client = depositor

    body = assert_error(post(client, amount, key=str(uuid.uuid4())), 400, "invalid_parameter")

    assert says in body["error"]["message"]


@pytest.mark.django_db
def test_idempotency_key_is_required(depositor):
    _, client = depositor

    assert_error(post(client, "10.00", key=None), 400, "idempotency_key_required")
    assert_error(post(client, "10.00", key="bad key with spaces"), 400, "idempotency_key_required")
    assert not FundsTransfer.objects.exists()


@pytest.mark.django_db
def test_a_retry_replays_the_first_deposit_and_never_makes_a_second(depositor, raw):
    account, client = depositor
    before = transfer_ids(raw, account)
    amount, key = odd_amount(), str(uuid.uuid4())

    first = post(client, amount, key=key)
    again = post(client, float(amount), key=key)  # the same amount, as a JSON number
    other = post(client, "1.00", key=key)

    assert first.status_code == 201 and again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    created = new_transfers(raw, account, before)
    assert [t["id"] for t in created] == [first.json()["id"]]
    assert Decimal(created[0]["amount"]) == Decimal(amount)
    assert first.json()["amount"] == amount and first.json()["direction"] == "INCOMING"
    assert_error(other, 422, "idempotency_key_reused")
    assert len(new_transfers(raw, account, before)) == 1


@pytest.mark.django_db
def test_a_bank_account_is_linked_when_missing(link, client_for, spare_accounts, raw, sandbox_url):
    account = spare_accounts[1]
    auth = (settings.SANDBOX_API_KEY, settings.SANDBOX_SECRET_KEY)
    for relationship in raw(f"/accounts/{account}/ach_relationships"):
        requests.delete(
            f"{sandbox_url}/v1/accounts/{account}/ach_relationships/{relationship['id']}",
            auth=auth,
            timeout=5,
        ).raise_for_status()
    client = client_for(link(account))

    response = post(client, odd_amount(), key=str(uuid.uuid4()))

    assert response.status_code == 201, response.content
    linked = raw(f"/accounts/{account}/ach_relationships")
    assert [r["status"] for r in linked] == ["APPROVED"]


@pytest.mark.django_db
def test_a_refused_deposit_gives_the_key_back(depositor, faults, raw):
    account, client = depositor
    before = transfer_ids(raw, account)
    amount, key = odd_amount(), str(uuid.uuid4())

    faults(rate_limited=1.0)
    refused = post(client, amount, key=key)
    faults(rate_limited=0.0)
    retried = post(client, amount, key=key)

    assert_error(refused, 503, "broker_rate_limited")
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried
    assert [t["id"] for t in new_transfers(raw, account, before)] == [retried.json()["id"]]


@pytest.mark.django_db
def test_a_lost_answer_is_found_on_retry_not_repeated(
    recorder, link, client_for, spare_accounts, raw, settings
):
    account = spare_accounts[2]
    client = client_for(link(account))
    before = transfer_ids(raw, account)
    amount, key = odd_amount(), str(uuid.uuid4())

    settings.ALPACA_TIMEOUT = 0.5
    recorder.late = {"POST": 1.5}  # the sandbox makes the transfer; its answer comes too late
    lost = post(client, amount, key=key)
    recorder.late = {}
    retried = post(client, amount, key=key)

    assert_error(lost, 504, "broker_timeout")
    made = new_transfers(raw, account, before)
    assert len(made) == 1
    assert retried.status_code == 201 and retried.json()["id"] == made[0]["id"]
    assert [c.method for c in recorder.calls].count("POST") == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submits_make_exactly_one_transfer(
    live_server, link, spare_accounts, raw, redis_client
):
    account = spare_accounts[3]
    user = link(account)
    token = Token.objects.create(user=user).key
    before = transfer_ids(raw, account)
    amount, key = odd_amount(), str(uuid.uuid4())
    submitters = 8
    start = threading.Barrier(submitters)

    def submit(_: int) -> requests.Response:
        with requests.Session() as session:  # each its own connection, like separate clicks
            start.wait()
            return session.post(
                f"{live_server.url}{FUNDS}",
                json={"amount": amount},
                headers={"Authorization": f"Token {token}", "Idempotency-Key": key},
                timeout=30,
            )

    with ThreadPoolExecutor(submitters) as pool:
        answers = list(pool.map(submit, range(submitters)))

    assert [a.status_code for a in answers] == [201] * submitters, [a.text for a in answers]
    assert all(a.json() == answers[0].json() for a in answers)  # (PostgreSQL reorders keys)
    made = new_transfers(raw, account, before)
    assert [t["id"] for t in made] == [answers[0].json()["id"]]
    assert FundsTransfer.objects.filter(user=user).count() == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == submitters - 1


@pytest.mark.django_db
def test_transfers_list_includes_the_deposit(depositor):
    account, client = depositor
    made = post(client, odd_amount(), key=str(uuid.uuid4())).json()

    listed = client.get(f"{FUNDS}?limit=5").json()

    assert listed["account_id"] == account
    assert made["id"] in [t["id"] for t in listed["transfers"]]
