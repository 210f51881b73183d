"""Marketdata app: talks to Alpaca (or the built-in sandbox) for accounts and prices."""

from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "marketdata"
