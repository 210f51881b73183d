"""Celery tasks of the real-time pipeline; the work is in realtime/services.py."""

from celery import shared_task

from realtime import services


@shared_task(name="realtime.collect_symbols", ignore_result=True)
def collect_symbols() -> None:
    services.collect_symbols()


@shared_task(name="realtime.recalculate_all", ignore_result=True)
def recalculate_all() -> None:
    services.recalculate_all()
