"""Read-only queries for brokerage accounts, scoped to the requesting user."""

import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from portfolio.models import BrokerageAccount


def accounts_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[BrokerageAccount]:
    """All accounts the user may see, oldest link first; none for anonymous users."""
    if not user.is_authenticated:
        return BrokerageAccount.objects.none()
    return BrokerageAccount.objects.filter(user=user)


def account_for_user(
    user: AbstractBaseUser | AnonymousUser, account_id: str | None
) -> BrokerageAccount | None:
    """The requested account if it belongs to the user (default: their first), else None.

    Account ids arrive from URLs and WebSocket messages, so bad input yields None, not an error.
    """
    accounts = accounts_for_user(user)
    if account_id is None:
        return accounts.first()
    try:
        parsed = uuid.UUID(str(account_id))
    except ValueError:
        return None
    return accounts.filter(account_id=parsed).first()
