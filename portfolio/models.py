"""Links between our users and their Alpaca brokerage accounts."""

from django.conf import settings
from django.db import models


class BrokerageAccount(models.Model):
    """An Alpaca account a user may view; a user can hold several."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        related_name="brokerage_accounts",
        on_delete=models.CASCADE,
    )
    account_id = models.UUIDField(unique=True, help_text="The Alpaca account id.")
    label = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.label or self.account_id} ({self.user})"


class FundsTransfer(models.Model):
    """One "add funds" request, keyed by the client's Idempotency-Key.

    The row is created (unique per user and key) before Alpaca is called, so a retried or
    doubled request finds it and gets the first answer instead of moving money twice. An
    Alpaca transfer belongs to one row at most (unique per account): a retry that looks for
    the transfer of its own lost request can never report another request's as its own.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Alpaca call in flight"
        COMPLETED = "completed", "Transfer created; the answer is stored"
        UNKNOWN = "unknown", "Alpaca did not say whether it created the transfer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, related_name="funds_transfers", on_delete=models.PROTECT
    )
    idempotency_key = models.CharField(max_length=255)
    account_id = models.UUIDField(help_text="The Alpaca account credited.")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    transfer_id = models.UUIDField(null=True, blank=True, help_text="Alpaca's transfer id.")
    response_body = models.JSONField(null=True, blank=True)
    requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When we last asked Alpaca for the transfer."
    )
    request_ended_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When that request ended (answered, refused or its answer lost); "
        "empty while it is in flight.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("user", "idempotency_key"), name="funds_transfer_unique_key_per_user"
            ),
            # NULLs are distinct (SQLite and PostgreSQL alike): rows without a transfer yet
            # do not collide.
            models.UniqueConstraint(
                fields=("account_id", "transfer_id"),
                name="funds_transfer_unique_transfer_per_account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} to {self.account_id} ({self.state})"
