"""Portfolio app: which Alpaca accounts belong to which user, and their live values."""

from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "portfolio"
