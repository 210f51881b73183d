"""Write-side operations for portfolio data."""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from marketdata.broker import gateway
from marketdata.errors import BrokerError, BrokerTimeout, BrokerUnavailable
from marketdata.sandbox_client import sandbox_accounts
from marketdata.types import AchRelationship, Transfer
from portfolio import money
from portfolio.errors import (
    BankLinkPending,
    BankLinkRequired,
    IdempotencyKeyReused,
    RequestInProgress,
)
from portfolio.models import BrokerageAccount, FundsTransfer
from portfolio.presenters import transfer_json

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "demo"
DEMO_USERNAME = "demo"
# The main demo user gets two accounts so multi-account views have something to switch between.
DEMO_USER_SHAPES = ("diversified", "crypto")


def _demo_plan(accounts: list[dict[str, str]]) -> list[tuple[str, list[str]]]:
    """Pick which sandbox account ids each demo user gets; an account has one owner at most."""
    by_shape: dict[str, list[str]] = {}
    for account in accounts:
        by_shape.setdefault(account["shape"], []).append(str(account["id"]))

    claimed: set[str] = set()

    def claim(shape: str) -> str | None:
        for account_id in by_shape.get(shape, []):
            if account_id not in claimed:
                claimed.add(account_id)
                return account_id
        return None

    plan = [(DEMO_USERNAME, [i for i in map(claim, DEMO_USER_SHAPES) if i])]
    for shape in by_shape:
        account_id = claim(shape)
        if account_id is None:
            logger.warning("no unclaimed sandbox account of shape %s left for its demo user", shape)
            continue
        plan.append((f"demo-{shape.replace('_', '-')}", [account_id]))
    return plan


@transaction.atomic
def seed_demo_users() -> list[tuple[str, list[str]]]:
    """Create demo users linked to built-in sandbox accounts; idempotent.

    Returns `(username, [account_id, ...])` per demo user; empty when real Alpaca keys are set,
    because demo users must never be attached to real brokerage accounts.
    """
    if not settings.USE_BUILTIN_SANDBOX:
        logger.info("broker keys are set; skipping demo users (built-in sandbox only)")
        return []

    accounts = sandbox_accounts()
    shapes = {str(a["id"]): a["shape"] for a in accounts}
    sandbox_ids = [uuid.UUID(i) for i in shapes]
    plan = _demo_plan(accounts)
    user_model = get_user_model()

    for username, account_ids in plan:
        user, created = user_model.objects.get_or_create(username=username)
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
            logger.info("created demo user %s", username)

        stale, _ = (
            BrokerageAccount.objects.filter(user=user).exclude(account_id__in=sandbox_ids).delete()
        )
        if stale:
            logger.info("removed %d stale account link(s) from %s", stale, username)

        for account_id in account_ids:
            link, linked = BrokerageAccount.objects.get_or_create(
                account_id=account_id,
                defaults={"user": user, "label": shapes[account_id].replace("_", " ")},
            )
            if linked:
                logger.info("linked %s to %s account %s", username, shapes[account_id], account_id)
            elif link.user_id != user.pk:
                logger.info("moved account %s from %s to %s", account_id, link.user, username)
                link.user = user
                link.save(update_fields=["user"])

    logger.info("demo users ready: %s (password %r)", ", ".join(u for u, _ in plan), DEMO_PASSWORD)
    return plan


# --- Add funds -------------------------------------------------------------------------------

#: ACH relationship statuses on the way to APPROVED.
BANK_LINK_WAITING = ("QUEUED", "PENDING", "SUBMITTED")
#: The bank account linked automatically in a sandbox (Alpaca's documented test numbers).
SANDBOX_BANK = {
    "bank_account_type": "CHECKING",
    "bank_account_number": "123456789",
    "bank_routing_number": "121000358",
    "nickname": "Sandbox checking",
}
#: Seconds between two looks at a bank link being approved, or at a deposit in flight.
POLL_INTERVAL = 0.25
#: How far before our record Alpaca's clock may date the transfer it created for it.
CLOCK_SKEW = timedelta(seconds=30)


@dataclass(frozen=True)
class FundsResult:
    """The deposit as first answered, and whether this answer is a replay of it."""

    body: dict
    replayed: bool


def _in_flight_limit() -> timedelta:
    """Longest a deposit request can be busy with Alpaca: after this its claim is stale."""
    calls = 3 + settings.FUNDS_ACH_APPROVAL_WAIT / POLL_INTERVAL
    return timedelta(seconds=calls * 2 * settings.ALPACA_TIMEOUT + 60)


def _claim(
    user: AbstractBaseUser, key: str, account_id: str, amount: Decimal
) -> tuple[FundsTransfer, bool]:
    """Our row for (user, key), created now if new: the database decides who goes first."""
    try:
        with transaction.atomic():
            record = FundsTransfer.objects.create(
                user=user, idempotency_key=key, account_id=account_id, amount=amount
            )
        return record, True
    except IntegrityError:
        return FundsTransfer.objects.get(user=user, idempotency_key=key), False


def _settled(record: FundsTransfer) -> FundsTransfer | None:
    """The row once its first request is done with it (None: it gave the key back), or as
    it stands after a short wait."""
    deadline = time.monotonic() + 2 * settings.ALPACA_TIMEOUT + 1
    while record.state == FundsTransfer.State.PENDING and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        try:
            record.refresh_from_db()
        except FundsTransfer.DoesNotExist:
            return None
    return record


def _take_over(record: FundsTransfer) -> bool:
    """Whether this request now owns a row whose outcome is unknown or whose owner died."""
    now = timezone.now()
    orphaned = Q(state=FundsTransfer.State.UNKNOWN) | Q(
        state=FundsTransfer.State.PENDING, updated_at__lt=now - _in_flight_limit()
    )
    taken = FundsTransfer.objects.filter(orphaned, pk=record.pk).update(
        state=FundsTransfer.State.PENDING, updated_at=now
    )
    return taken == 1


def _lost_transfer(record: FundsTransfer) -> FundsResult | None:
    """Adopt the transfer Alpaca made for an earlier, unanswered request of this row, if any.

    Alpaca transfers carry no key of ours, so the match is an incoming transfer of the row's
    amount, made while its requests ran (from the row's creation to the end of its last
    request, give or take CLOCK_SKEW), that no other row holds. A transfer that another row's
    request still in flight may have made is not taken: that request's answer will claim it.
    We wait for such requests a little, then answer "in progress" (the client retries). Two
    retries adopting one transfer at once are settled by the unique (account, transfer)
    constraint: the loser tries the next candidate.
    """
    until = (record.request_ended_at or timezone.now()) + CLOCK_SKEW
    candidates = sorted(
        (
            transfer
            for transfer in gateway().transfers(record.account_id, limit=100)
            if transfer.direction == "INCOMING"
            and transfer.amount == record.amount
            and record.created_at - CLOCK_SKEW <= transfer.created_at <= until
        ),
        key=lambda transfer: transfer.created_at,
    )
    deadline = time.monotonic() + 2 * settings.ALPACA_TIMEOUT + 1
    while True:
        others = FundsTransfer.objects.filter(account_id=record.account_id).exclude(pk=record.pk)
        held = {str(i) for i in others.values_list("transfer_id", flat=True) if i is not None}
        in_flight = others.filter(
            amount=record.amount,
            request_ended_at__isnull=True,
            requested_at__gte=timezone.now() - _in_flight_limit(),
        ).values_list("requested_at", flat=True)
        contested_from = min(in_flight, default=None)
        free = [transfer for transfer in candidates if transfer.id not in held]
        for transfer in free:
            if contested_from is None or transfer.created_at < contested_from - CLOCK_SKEW:
                adopted = _adopt(record, transfer)
                if adopted is not None:
                    return adopted
        if not free or contested_from is None:
            return None
        if time.monotonic() >= deadline:
            raise RequestInProgress(retry_after=1)
        time.sleep(POLL_INTERVAL)


def _adopt(record: FundsTransfer, transfer: Transfer) -> FundsResult | None:
    """Claim ``transfer`` for the row; None when another row claimed it first."""
    body = transfer_json(transfer)
    try:
        with transaction.atomic():
            FundsTransfer.objects.filter(pk=record.pk).update(
                state=FundsTransfer.State.COMPLETED,
                transfer_id=transfer.id,
                response_body=body,
                updated_at=timezone.now(),
            )
    except IntegrityError:
        return None
    logger.info("deposit %s: adopted transfer %s of a lost request", record.pk, transfer.id)
    return FundsResult(body, replayed=False)


def _approved_link(account_id: str) -> tuple[AchRelationship | None, bool]:
    """The account's first approved ACH relationship, and whether one is on its way."""
    links = gateway().ach_relationships(account_id)
    approved = next((link for link in links if link.status == "APPROVED"), None)
    return approved, any(link.status in BANK_LINK_WAITING for link in links)


def _bank_link(user: AbstractBaseUser, account_id: str) -> AchRelationship:
    """The account's approved ACH relationship; in a sandbox one is linked when missing.

    A new link is approved by the broker after a moment: we wait FUNDS_ACH_APPROVAL_WAIT
    seconds for it, then ask the client to retry.
    """
    approved, waiting = _approved_link(account_id)
    if approved is not None:
        return approved
    if not waiting:
        if not (settings.USE_BUILTIN_SANDBOX or settings.ALPACA_SANDBOX):
            raise BankLinkRequired()
        owner = user.get_full_name() or user.get_username()
        gateway().create_ach_relationship(account_id, account_owner_name=owner, **SANDBOX_BANK)
        logger.info("linked a sandbox bank account to %s", account_id)
    deadline = time.monotonic() + settings.FUNDS_ACH_APPROVAL_WAIT
    while time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        approved, _ = _approved_link(account_id)
        if approved is not None:
            return approved
    raise BankLinkPending(retry_after=2)


def _complete(record: FundsTransfer, transfer: Transfer) -> FundsResult:
    """Record the transfer Alpaca made for this row's own request. That is certain, so it
    outranks an adoption — possible only if this request outlived _in_flight_limit and was
    taken for dead: the adopter keeps its stored answer and loses the claim (logged)."""
    now = timezone.now()
    body = transfer_json(transfer)
    with transaction.atomic():
        adopted = (
            FundsTransfer.objects.filter(account_id=record.account_id, transfer_id=transfer.id)
            .exclude(pk=record.pk)
            .update(transfer_id=None, updated_at=now)
        )
        if adopted:
            logger.error(
                "deposit %s: transfer %s, made for it, had been adopted by another deposit",
                record.pk, transfer.id,
            )  # fmt: skip
        FundsTransfer.objects.filter(pk=record.pk).update(
            state=FundsTransfer.State.COMPLETED,
            transfer_id=transfer.id,
            response_body=body,
            request_ended_at=now,
            updated_at=now,
        )
    return FundsResult(body, replayed=False)


def _requesting(record: FundsTransfer) -> None:
    """Mark the row's request to Alpaca in flight, committed before it is sent: other rows'
    retries then leave alone any transfer it may make."""
    now = timezone.now()
    FundsTransfer.objects.filter(pk=record.pk).update(
        requested_at=now, request_ended_at=None, updated_at=now
    )


def _answer_lost(record: FundsTransfer) -> None:
    """Alpaca may have made the transfer: keep the row as "unknown", its request ended now,
    so a retry looks for the transfer made meanwhile."""
    now = timezone.now()
    FundsTransfer.objects.filter(pk=record.pk).update(
        state=FundsTransfer.State.UNKNOWN, request_ended_at=now, updated_at=now
    )


def _give_back(record: FundsTransfer) -> None:
    """A retry that could not finish looking for the lost transfer: "unknown" again, as the
    lost request left it, for the next retry."""
    FundsTransfer.objects.filter(pk=record.pk).update(
        state=FundsTransfer.State.UNKNOWN, updated_at=timezone.now()
    )


def _owned_record(
    user: AbstractBaseUser, account_id: str, amount: Decimal, key: str
) -> FundsTransfer | FundsResult:
    """The row this request may act on, or the stored answer of the request that owns it."""
    for _ in range(2):  # a second round when the first owner released the key meanwhile
        record, created = _claim(user, key, account_id, amount)
        if created:
            return record
        if record.amount != amount or str(record.account_id) != str(account_id):
            raise IdempotencyKeyReused(
                details={"amount": money.money(record.amount), "account_id": str(record.account_id)}
            )
        settled = _settled(record)
        if settled is None:
            continue
        if settled.state == FundsTransfer.State.COMPLETED:
            return FundsResult(settled.response_body, replayed=True)
        if not _take_over(settled):
            break
        try:
            adopted = _lost_transfer(settled)
        except BaseException:
            _give_back(settled)
            raise
        return settled if adopted is None else adopted
    raise RequestInProgress(retry_after=1)


def add_funds(
    user: AbstractBaseUser, account_id: str, amount: Decimal, idempotency_key: str
) -> FundsResult:
    """Deposit ``amount`` into the account by ACH, at most once per idempotency key.

    The (user, key) row is committed BEFORE Alpaca is called, so of two requests with one key
    only the first calls Alpaca; the other waits for its answer and replays it. When Alpaca's
    answer is lost (timeout, 5xx) the row says "unknown" and a retry first looks for the
    transfer Alpaca may have made (:func:`_lost_transfer`), so a deposit is never made twice
    and a transfer is never reported for two deposits. When Alpaca refused, or we never got
    as far as asking it for the transfer, the key is released for a retry.
    """
    owned = _owned_record(user, account_id, amount, idempotency_key)
    if isinstance(owned, FundsResult):
        return owned
    try:
        relationship = _bank_link(user, account_id)
    except BaseException:
        owned.delete()  # Alpaca was not asked for a transfer: the key is free again
        raise
    _requesting(owned)
    try:
        transfer = gateway().create_transfer(account_id, amount, "INCOMING", relationship.id)
    except BrokerError as failure:
        if isinstance(failure, BrokerTimeout | BrokerUnavailable):
            _answer_lost(owned)
        else:
            owned.delete()  # refused: nothing was made
        raise
    except BaseException:
        _answer_lost(owned)
        raise
    logger.info("deposit %s: transfer %s of %s to %s", owned.pk, transfer.id, amount, account_id)
    return _complete(owned, transfer)
