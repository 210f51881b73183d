"""Admin for brokerage accounts, also editable inline on each user."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from portfolio.models import BrokerageAccount, FundsTransfer

User = get_user_model()


@admin.register(BrokerageAccount)
class BrokerageAccountAdmin(admin.ModelAdmin):
    list_display = ("account_id", "label", "user", "created_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "account_id")
    raw_id_fields = ("user",)


@admin.register(FundsTransfer)
class FundsTransferAdmin(admin.ModelAdmin):
    """Read-only: these rows are the record of money asked for; editing them would lie."""

    list_display = ("created_at", "user", "account_id", "amount", "state", "transfer_id")
    list_filter = ("state",)
    list_select_related = ("user",)
    search_fields = ("user__username", "account_id", "transfer_id", "idempotency_key")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class BrokerageAccountInline(admin.TabularInline):
    model = BrokerageAccount
    extra = 0
    fields = ("account_id", "label", "created_at")
    readonly_fields = ("created_at",)


admin.site.unregister(User)


@admin.register(User)
class UserWithAccountsAdmin(UserAdmin):
    inlines = (*UserAdmin.inlines, BrokerageAccountInline)
