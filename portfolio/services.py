"""Write-side operations for portfolio data."""

import logging
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from marketdata.sandbox_client import sandbox_accounts
from portfolio.models import BrokerageAccount

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
