"""Celery application; its configuration lives in Django settings under the CELERY_ prefix.

Worker and beat log through Django's LOGGING, like every other process (see _django_logging).
"""

import os

from celery import Celery
from celery.signals import setup_logging, worker_ready
from django.conf import settings
from django.utils.log import configure_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clera.settings")

app = Celery("clera")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.broker_connection_retry_on_startup = True
app.autodiscover_tasks()


@setup_logging.connect
def _django_logging(**kwargs: object) -> None:
    """Apply Django's LOGGING instead of Celery's own setup, which would replace the root's
    handlers (and give task loggers handlers of their own) without the secret redaction.
    Levels then come from LOG_LEVEL, not from ``--loglevel``."""
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


@app.on_after_configure.connect
def _schedule(sender: Celery, **kwargs: object) -> None:
    """The beat schedule, built once settings are loaded (not at import: tests set the
    environment first).

    Run exactly ONE beat process (Procfile ``beat``; its schedule file lives in var/). Each run
    expires before the next is due, so a backlog never piles up; the tasks lock against overlap.
    """
    sender.conf.beat_schedule = {
        "collect-symbols": {
            "task": "realtime.collect_symbols",
            "schedule": settings.SYMBOL_COLLECTION_INTERVAL,
            "options": {"expires": settings.SYMBOL_COLLECTION_INTERVAL * 0.9},
        },
        "recalculate-all": {
            "task": "realtime.recalculate_all",
            "schedule": settings.RECALCULATION_INTERVAL,
            "options": {"expires": settings.RECALCULATION_INTERVAL * 0.9},
        },
    }


@worker_ready.connect
def _collect_at_once(sender: object, **kwargs: object) -> None:
    """Collect symbols as soon as a worker is up, not one interval later: until the first
    collection nothing is streamed and no live value moves. Harmless with several workers
    (the task locks against overlap)."""
    app.send_task("realtime.collect_symbols", expires=settings.SYMBOL_COLLECTION_INTERVAL * 0.9)
