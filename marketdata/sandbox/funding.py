"""The sandbox's ACH desk: bank relationships are approved and transfers settle over seconds.

Relationships are QUEUED, then APPROVED a moment later; transfers go QUEUED →
SENT_TO_CLEARING → COMPLETE over a couple of seconds, and only at COMPLETE does cash move
(:meth:`.world.World.apply_transfer`). A withdrawal may not exceed the cash not already
promised to withdrawals in flight, and one whose cash ran short by clearing is REJECTED. Every
status change is published on the ``funding`` event stream (:mod:`.events`). The steps run on
the exchange's loop (:mod:`.scheduler`).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING
from uuid import UUID

from .accounts import CENT, ZERO, Account, AchRelationship, Transfer
from .errors import forbidden, invalid, not_cancelable, not_found
from .events import funding_update

if TYPE_CHECKING:
    from .exchange import Exchange

RELATIONSHIP_APPROVAL_DELAY = (0.2, 0.6)
TRANSFER_STEP_DELAY = {"QUEUED": (0.3, 0.8), "SENT_TO_CLEARING": (0.5, 1.2)}
PENDING_TRANSFER = frozenset({"QUEUED", "SENT_TO_CLEARING"})


class Funding:
    """ACH relationships and transfers for one world, stepped by the exchange's scheduler."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.world = exchange.world
        self.scheduler = exchange.scheduler
        #: transfers_submitted, _completed and _rejected, for the exchange's stats.
        self.counts: Counter[str] = Counter()

    def create_relationship(
        self,
        account: Account,
        owner_name: str,
        bank_account_type: str,
        bank_account_number: str,
        bank_routing_number: str,
        nickname: str | None,
    ) -> AchRelationship:
        """Link a bank account: QUEUED now, APPROVED a moment later."""
        if bank_account_type not in ("CHECKING", "SAVINGS"):
            raise invalid("bank_account_type must be CHECKING or SAVINGS")
        now = datetime.now(UTC)
        relationship = AchRelationship(
            id=self.world.new_id(),
            account_id=account.id,
            owner_name=owner_name,
            bank_account_type=bank_account_type,
            bank_account_number=bank_account_number,
            bank_routing_number=bank_routing_number,
            nickname=nickname or "",
            status="QUEUED",
            created_at=now,
            updated_at=now,
        )
        account.relationships.append(relationship)
        self._publish(relationship, "", now)
        self.scheduler.after(now, RELATIONSHIP_APPROVAL_DELAY, partial(self._approve, relationship))
        return relationship

    def _approve(self, relationship: AchRelationship, now: datetime) -> None:
        if relationship.status == "QUEUED":
            relationship.status = "APPROVED"
            relationship.updated_at = now
            self._publish(relationship, "QUEUED", now)

    def submit_transfer(
        self, account: Account, relationship_id: UUID | None, amount: Decimal, direction: str
    ) -> Transfer:
        """Start an ACH transfer over an approved relationship (the first one when None)."""
        if direction not in ("INCOMING", "OUTGOING"):
            raise invalid("direction must be INCOMING or OUTGOING")
        if amount <= 0 or amount != amount.quantize(CENT):
            raise invalid("amount must be a positive amount in dollars and cents")
        relationship = self._approved_relationship(account, relationship_id)
        if direction == "OUTGOING" and amount > self.withdrawable(account):
            raise forbidden("insufficient cash available for withdrawal")
        now = datetime.now(UTC)
        transfer = Transfer(
            id=self.world.new_id(),
            account_id=account.id,
            relationship_id=relationship.id,
            amount=amount,
            direction=direction,
            status="QUEUED",
            created_at=now,
            updated_at=now,
        )
        account.transfers.append(transfer)
        self.counts["transfers_submitted"] += 1
        self._publish(transfer, "", now)
        self.scheduler.after(
            now, TRANSFER_STEP_DELAY["QUEUED"], partial(self._advance, account, transfer)
        )
        return transfer

    def cancel_transfer(self, account: Account, transfer: Transfer) -> None:
        """Cancel a transfer that has not yet been sent to clearing."""
        if transfer.status != "QUEUED":
            raise not_cancelable("transfer")
        now = datetime.now(UTC)
        transfer.status = "CANCELED"
        transfer.updated_at = now
        self._publish(transfer, "QUEUED", now)

    def withdrawable(self, account: Account) -> Decimal:
        """Cash not already promised to withdrawals in flight."""
        pending = sum(
            (
                t.amount
                for t in account.transfers
                if t.direction == "OUTGOING" and t.status in PENDING_TRANSFER
            ),
            ZERO,
        )
        return max(account.cash - pending, ZERO)

    def _approved_relationship(
        self, account: Account, relationship_id: UUID | None
    ) -> AchRelationship:
        if relationship_id is None:
            for relationship in account.relationships:
                if relationship.status == "APPROVED":
                    return relationship
            raise invalid("the account has no approved ACH relationship")
        for relationship in account.relationships:
            if str(relationship.id) == str(relationship_id):
                if relationship.status != "APPROVED":
                    raise invalid(f"ACH relationship is {relationship.status}, not APPROVED")
                return relationship
        raise not_found("relationship")

    def _advance(self, account: Account, transfer: Transfer, now: datetime) -> None:
        """QUEUED → SENT_TO_CLEARING → COMPLETE (cash moves), or REJECTED if cash ran short."""
        status = transfer.status
        if status == "QUEUED":
            transfer.status = "SENT_TO_CLEARING"
            transfer.updated_at = now
            step = TRANSFER_STEP_DELAY[transfer.status]
            self.scheduler.after(now, step, partial(self._advance, account, transfer))
        elif status == "SENT_TO_CLEARING":
            if transfer.direction == "OUTGOING" and account.cash < transfer.amount:
                transfer.status = "REJECTED"
                transfer.reason = "insufficient funds"
                transfer.updated_at = now
                self.counts["transfers_rejected"] += 1
            else:
                self.world.apply_transfer(account, transfer, now)
                self.counts["transfers_completed"] += 1
        else:
            return  # canceled meanwhile
        self._publish(transfer, status, now)

    def _publish(self, entity: Transfer | AchRelationship, status_from: str, now: datetime) -> None:
        kind = "Transfer" if isinstance(entity, Transfer) else "BankRelationship"
        self.exchange.events.publish(
            "funding",
            funding_update(
                kind, str(entity.id), str(entity.account_id), status_from, entity.status
            ),
        )
