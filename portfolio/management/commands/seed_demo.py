"""`manage.py seed_demo`: demo logins for the built-in sandbox (run by `bin/run`)."""

from django.core.management.base import BaseCommand

from portfolio.services import seed_demo_users


class Command(BaseCommand):
    help = "Create demo users linked to the built-in sandbox's accounts (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        seed_demo_users()
