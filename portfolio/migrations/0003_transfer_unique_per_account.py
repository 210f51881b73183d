"""An Alpaca transfer belongs to one deposit row at most (unique per account), and each row
says when it last asked Alpaca for its transfer and when that request ended.

Before the constraint, rows that share a transfer (one request's transfer adopted by another's
retry) keep it on the earliest row only; the others keep their stored answer, which still names
the transfer, so nothing that was reported is lost.
"""

from django.conf import settings
from django.db import migrations, models


def release_shared_transfers(apps, schema_editor):
    FundsTransfer = apps.get_model("portfolio", "FundsTransfer")
    seen = set()
    for row in FundsTransfer.objects.filter(transfer_id__isnull=False).order_by("created_at", "id"):
        if (row.account_id, row.transfer_id) in seen:
            FundsTransfer.objects.filter(pk=row.pk).update(transfer_id=None)
        seen.add((row.account_id, row.transfer_id))


class Migration(migrations.Migration):

    dependencies = [
        ("portfolio", "0002_funds_transfer"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="fundstransfer",
            name="request_ended_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When that request ended (answered, refused or its answer lost); "
                "empty while it is in flight.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="fundstransfer",
            name="requested_at",
            field=models.DateTimeField(
                blank=True, help_text="When we last asked Alpaca for the transfer.", null=True
            ),
        ),
        migrations.RunPython(release_shared_transfers, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="fundstransfer",
            constraint=models.UniqueConstraint(
                fields=("account_id", "transfer_id"),
                name="funds_transfer_unique_transfer_per_account",
            ),
        ),
    ]
