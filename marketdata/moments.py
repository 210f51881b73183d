"""Every way a moment becomes text, in one place (as :mod:`portfolio.money` is for amounts).

* :func:`stored` — what Redis keeps: fixed-width UTC ISO 8601 with microseconds,
  ``"2026-11-20T15:00:00.123456Z"``. Fixed width makes moments compare correctly as strings,
  which the account book's Lua scripts rely on; :func:`parse_stored` reads it back.
* :func:`iso` — what the REST API and the socket payloads show: UTC ISO 8601 with a ``Z``,
  as precise as the moment is (``"2026-11-20T15:00:00Z"``, ``"…:00.5Z"`` is never cut).
* :func:`iso_ms` — socket protocol timestamps and stats: UTC ISO 8601 to the millisecond.
* :func:`new_york_day` — the New York calendar date, ``YYYY-MM-DD`` (trading days are New
  York's).

Naive moments are taken as UTC everywhere, as Alpaca's SDK assumes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .types import NEW_YORK


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:  # the common case, on every push: nothing to convert
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stored(moment: datetime) -> str:
    """A moment as fixed-width UTC text, the form every Redis key holds."""
    return _utc(moment).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_stored(text: bytes | str | None) -> datetime | None:
    """The moment :func:`stored` wrote; None for a missing or unreadable value."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.decode() if isinstance(text, bytes) else text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    """A moment as the API shows it (None stays None)."""
    return None if moment is None else _utc(moment).isoformat().replace("+00:00", "Z")


def iso_ms(moment: datetime) -> str:
    """A moment to the millisecond, as socket messages and stats carry it."""
    return _utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_york_day(moment: datetime) -> str:
    """The New York calendar date of a moment, ``YYYY-MM-DD``."""
    return moment.astimezone(NEW_YORK).date().isoformat()
