"""Celery tasks of the real-time pipeline; the work is in realtime/collection.py."""

from celery import shared_task

from realtime import collection


@shared_task(name="realtime.collect_symbols", ignore_result=True)
def collect_symbols() -> None:
    collection.collect_symbols()


@shared_task(name="realtime.recalculate_all", ignore_result=True)
def recalculate_all() -> None:
    collection.recalculate_all()
