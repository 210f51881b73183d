"""Admin for brokerage accounts, also editable inline on each user."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from portfolio.models import BrokerageAccount

User = get_user_model()


@admin.register(BrokerageAccount)
class BrokerageAccountAdmin(admin.ModelAdmin):
    list_display = ("account_id", "label", "user", "created_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "account_id")
    raw_id_fields = ("user",)


class BrokerageAccountInline(admin.TabularInline):
    model = BrokerageAccount
    extra = 0
    fields = ("account_id", "label", "created_at")
    readonly_fields = ("created_at",)


admin.site.unregister(User)


@admin.register(User)
class UserWithAccountsAdmin(UserAdmin):
    inlines = (*UserAdmin.inlines, BrokerageAccountInline)
