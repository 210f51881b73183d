"""The records a sandbox account is made of: holdings, orders, ledger activities, funding.

Plain data, no rules: :class:`.world.World` keeps them consistent (cash and holdings are the
ledger replayed) and :mod:`.wire` turns them into Alpaca's JSON. Money is ``Decimal``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .market import Asset

ZERO = Decimal(0)
CENT = Decimal("0.01")
RATIO = Decimal("1E-10")

#: Activity types that move cash in or out of the account: the history's cash flow.
CASHFLOW_TYPES = ("CSD", "CSW")


@dataclass(slots=True)
class Holding:
    """A position: signed quantity (negative when short) and average entry price."""

    asset: Asset
    qty: Decimal
    avg_entry_price: Decimal

    @property
    def side(self) -> str:
        return "short" if self.qty < 0 else "long"


@dataclass(slots=True)
class Order:
    id: uuid.UUID
    client_order_id: str
    account_id: uuid.UUID
    asset: Asset
    side: str  # buy | sell
    order_type: str  # market | limit
    time_in_force: str
    qty: Decimal
    limit_price: Decimal | None
    status: str
    created_at: datetime
    submitted_at: datetime
    updated_at: datetime
    filled_qty: Decimal = ZERO
    filled_avg_price: Decimal | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None

    OPEN_STATUSES = frozenset({"new", "accepted", "pending_new", "partially_filled", "held"})

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


@dataclass(slots=True)
class Activity:
    """One ledger entry; ``net_amount`` is its effect on cash (fills included)."""

    id: str
    account_id: uuid.UUID
    activity_type: str  # FILL | CSD | CSW | DIV | FEE
    at: datetime
    net_amount: Decimal
    asset: Asset | None = None
    side: str | None = None  # buy | sell for fills
    qty: Decimal | None = None
    price: Decimal | None = None
    order: Order | None = None
    leaves_qty: Decimal | None = None
    cum_qty: Decimal | None = None
    description: str = ""

    @property
    def qty_delta(self) -> Decimal:
        if self.activity_type != "FILL" or self.qty is None:
            return ZERO
        return self.qty if self.side == "buy" else -self.qty


@dataclass(slots=True)
class AchRelationship:
    id: uuid.UUID
    account_id: uuid.UUID
    owner_name: str
    bank_account_type: str
    bank_account_number: str
    bank_routing_number: str
    nickname: str
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Transfer:
    id: uuid.UUID
    account_id: uuid.UUID
    relationship_id: uuid.UUID | None
    amount: Decimal
    direction: str  # INCOMING | OUTGOING
    status: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    reason: str | None = None


@dataclass(slots=True)
class Account:
    id: uuid.UUID
    account_number: str
    shape: str
    owner: str
    created_at: datetime
    multiplier: int = 1  # 2 for the margin account that holds a short
    cash: Decimal = ZERO
    last_equity: Decimal = ZERO
    holdings: dict[str, Holding] = field(default_factory=dict)
    activities: list[Activity] = field(default_factory=list)  # chronological
    orders: list[Order] = field(default_factory=list)  # chronological by submission
    transfers: list[Transfer] = field(default_factory=list)
    relationships: list[AchRelationship] = field(default_factory=list)


def new_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from ``rng``, so a seed gives the same ids every run."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)
