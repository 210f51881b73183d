"""Adding funds: validated amounts, a required Idempotency-Key, and never two deposits for one
key — not on a retry, not on concurrent double-submits, not when Alpaca's answer is lost."""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from rest_framework.authtoken.models import Token

from portfolio import money
from portfolio.models import FundsTransfer
from tests.api.test_access import assert_error
from tests.realtime.conftest import wait_for

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
        # Only plain decimal text: ASCII digits, optionally a point and one or two more.
        ("1e3", "plain decimal text"),
        ("1_000", "plain decimal text"),
        ("1,000", "plain decimal text"),
        ("٣", "plain decimal text"),
        ("１０", "plain decimal text"),
        ("+5", "plain decimal text"),
        (" 5", "plain decimal text"),
        ("5 ", "plain decimal text"),
        ("5\n", "plain decimal text"),
        ("5.", "plain decimal text"),
        (".5", "plain decimal text"),
        ("$5", "plain decimal text"),
        ("Infinity", "plain decimal text"),
        # A JSON number is parsed into a binary float before we see it: money travels as text.
        (250, "not a JSON number"),
        (250.5, "not a JSON number"),
    ],
)
def test_amount_is_validated(depositor, raw, amount, says):
    account, client = depositor
    before = transfer_ids(raw, account)

    body = assert_error(post(client, amount, key=str(uuid.uuid4())), 400, "invalid_parameter")

    assert says in body["error"]["message"]
    assert transfer_ids(raw, account) == before
    assert not FundsTransfer.objects.exists()


@pytest.mark.django_db
def test_the_schema_documents_the_amount_rule_the_api_applies(admin_client):
    schema = admin_client.get("/api/schema?format=json").json()
    amount = schema["components"]["schemas"]["FundsRequestRequest"]["properties"]["amount"]

    assert amount["type"] == "string"
    assert amount["pattern"] == money.AMOUNT_PATTERN
    for accepted in ("250", "250.5", "250.00", "0.01", "007"):
        assert re.fullmatch(amount["pattern"], accepted)
    for refused in ("1e3", "1_000", "٣", "+5", " 5", "5.", "10.001", "-5"):
        assert not re.fullmatch(amount["pattern"], refused)


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
    again = post(client, f"000{amount}", key=key)  # the same amount, written differently
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


def _submit(url: str, token: str, key: str, amount: str) -> requests.Response:
    """One deposit request over its own connection, as a separate client would send it."""
    with requests.Session() as session:
        return session.post(
            f"{url}{FUNDS}",
            json={"amount": amount},
            headers={"Authorization": f"Token {token}", "Idempotency-Key": key},
            timeout=30,
        )


def _until_answered(url: str, token: str, key: str, amount: str) -> requests.Response:
    """Retry while the API says the deposit is in progress (409 with Retry-After), as a client
    is told to."""
    for _ in range(20):
        answer = _submit(url, token, key, amount)
        if answer.status_code != 409:
            return answer
        time.sleep(float(answer.headers["Retry-After"]))  # the API's own instruction
    raise AssertionError(f"still in progress: {answer.text}")


@pytest.mark.django_db(transaction=True)
def test_a_retry_never_adopts_the_transfer_another_request_is_waiting_for(
    live_server, recorder, link, spare_accounts, raw, settings
):
    """Request B's transfer is made, its answer on the way; request R of the same amount
    lost its answer. R's retry must not report B's transfer as its own."""
    account = spare_accounts[6]
    token = Token.objects.create(user=link(account)).key
    before = transfer_ids(raw, account)
    amount = odd_amount()

    settings.ALPACA_TIMEOUT = 10
    recorder.late = {"POST": 4.0}  # B's answer comes after 4 s, within B's timeout
    with ThreadPoolExecutor(1) as pool:
        b = pool.submit(_submit, live_server.url, token, "deposit-b", amount)
        wait_for(lambda: new_transfers(raw, account, before), what="B's transfer")
        settings.ALPACA_TIMEOUT = 0.5  # R's request gives up on the same late answer
        lost = _submit(live_server.url, token, "deposit-r", amount)
        assert lost.status_code == 504, lost.text
        retried_early = _submit(live_server.url, token, "deposit-r", amount)
        deposit_b = b.result()
    recorder.late = {}
    deposit_r = (
        retried_early
        if retried_early.status_code != 409
        else _until_answered(live_server.url, token, "deposit-r", amount)
    )

    assert deposit_b.status_code == 201 and deposit_r.status_code == 201, deposit_r.text
    made = {t["id"] for t in new_transfers(raw, account, before)}
    assert len(made) == 2  # B's and R's lost one; the retry made none
    assert {deposit_b.json()["id"], deposit_r.json()["id"]} == made
    assert [c.method for c in recorder.calls].count("POST") == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_lost_deposits_each_claim_a_transfer_of_their_own(
    live_server, recorder, link, spare_accounts, raw, settings
):
    account = spare_accounts[7]
    token = Token.objects.create(user=link(account)).key
    before = transfer_ids(raw, account)
    amount, keys = odd_amount(), [str(uuid.uuid4()) for _ in range(4)]
    settings.ALPACA_TIMEOUT = 0.5
    recorder.late = {"POST": 1.5}  # every answer lost; each transfer made
    assert all(_submit(live_server.url, token, key, amount).status_code == 504 for key in keys)
    recorder.late = {}
    lost = {t["id"] for t in new_transfers(raw, account, before)}
    assert len(lost) == len(keys)
    start = threading.Barrier(len(keys))

    def retry(key: str) -> requests.Response:
        start.wait()
        return _until_answered(live_server.url, token, key, amount)

    with ThreadPoolExecutor(len(keys)) as pool:
        answers = list(pool.map(retry, keys))

    assert [a.status_code for a in answers] == [201] * len(keys), [a.text for a in answers]
    assert {a.json()["id"] for a in answers} == lost  # each reported once, none made anew
    assert {t["id"] for t in new_transfers(raw, account, before)} == lost
    held = FundsTransfer.objects.values_list("transfer_id", flat=True)
    assert sorted(map(str, held)) == sorted(lost)


@pytest.mark.django_db(transaction=True)
def test_the_database_holds_a_transfer_for_one_deposit_per_account(link, spare_accounts):
    account, transfer = spare_accounts[8], uuid.uuid4()
    user = link(account)
    FundsTransfer.objects.create(
        user=user, idempotency_key="a", account_id=account, amount=1, transfer_id=transfer
    )
    FundsTransfer.objects.create(user=user, idempotency_key="b", account_id=account, amount=1)
    FundsTransfer.objects.create(user=user, idempotency_key="c", account_id=account, amount=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        FundsTransfer.objects.create(
            user=user, idempotency_key="d", account_id=account, amount=1, transfer_id=transfer
        )
    FundsTransfer.objects.create(  # another account's transfer ids are its own
        user=user, idempotency_key="e", account_id=spare_accounts[9], amount=1, transfer_id=transfer
    )


@pytest.mark.django_db(transaction=True)
def test_the_migration_leaves_a_shared_transfer_on_its_earliest_deposit(
    django_user_model, spare_accounts
):
    """Rows that already share a transfer (the old adoption bug) must not stop the migration:
    the earliest row keeps the claim, the others their stored answer."""
    before = ("portfolio", "0002_funds_transfer")
    after = ("portfolio", "0003_transfer_unique_per_account")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    try:
        old = executor.loader.project_state([before]).apps.get_model("portfolio", "FundsTransfer")
        user, shared = django_user_model.objects.create(username="m"), uuid.uuid4()
        for key in ("first", "second"):
            old.objects.create(
                user_id=user.pk, idempotency_key=key, account_id=spare_accounts[8], amount=5,
                state="completed", transfer_id=shared, response_body={"id": str(shared)},
            )  # fmt: skip

        executor = MigrationExecutor(connection)
        executor.migrate([after])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    rows = {row.idempotency_key: row for row in FundsTransfer.objects.all()}
    assert rows["first"].transfer_id == shared
    assert rows["second"].transfer_id is None
    assert rows["second"].response_body == {"id": str(shared)}
