"""Read-only queries the real-time pipeline makes of the database."""

from portfolio.models import BrokerageAccount


def linked_account_ids() -> set[str]:
    """Every Alpaca account some user of ours has linked: the book keeps them even when they
    hold nothing (the bulk positions call lists only accounts with positions)."""
    return {str(i) for i in BrokerageAccount.objects.values_list("account_id", flat=True)}
