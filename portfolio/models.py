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
