"""Every way a moment becomes text or is read from it, in one place (as :mod:`portfolio.money` is
for amounts).

Writing:

* :func:`stored` — what Redis keeps: fixed-width UTC ISO 8601 with microseconds,
  ``"2026-11-20T15:00:00.123456Z"``. Fixed width makes moments compare correctly as strings,
  which the account book's Lua scripts rely on; :func:`parse_stored` reads it back.
  :func:`stored_epoch` writes the same from epoch seconds and microseconds (a streamed msgpack
  ``Timestamp``) without making a ``datetime``: the quote consumer's writer formats thousands
  of those a flush.
* :func:`iso` — what the REST API and the socket payloads show: UTC ISO 8601 with a ``Z``,
  as precise as the moment is (``"2026-11-20T15:00:00Z"``, ``"…:00.5Z"`` is never cut).
* :func:`iso_ms` — socket protocol timestamps and stats: UTC ISO 8601 to the millisecond.
* :func:`new_york_day` — the New York calendar date, ``YYYY-MM-DD`` (trading days are New
  York's); :func:`new_york_day_epoch` of an epoch second.
* :func:`new_york` — New York wall time with its ``±hh:mm`` offset, optionally with nine
  fraction digits, ``"2026-12-03T10:42:21.123456789-05:00"``: the other form Alpaca writes
  (its clock, a trade account's ``previous_close``), which the sandbox sends so that every
  reader meets it.

Reading what Alpaca sends:

* :func:`parse` — RFC 3339 with ``Z`` or any ``±hh:mm`` offset and up to nine fraction
  digits (a ``datetime`` keeps six: the rest is cut, never rounded, so a moment read twice
  compares equal), always as an aware UTC ``datetime``.
* :func:`from_epoch` — an epoch number in seconds **or** milliseconds, told apart by
  magnitude: below ``10**11`` it is seconds (``10**11`` s is the year 5138), at or above it
  milliseconds (``10**11`` ms is March 1973, before any Alpaca account).

Naive moments are taken as UTC everywhere, as Alpaca's SDK assumes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
#: Epoch numbers at or above this are milliseconds, below it seconds (see the module docstring).
MILLISECONDS_FROM = 10**11
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:  # the common case, on every push: nothing to convert
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stored(moment: datetime) -> str:
    """A moment as fixed-width UTC text, the form every Redis key holds."""
    return _utc(moment).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@lru_cache(maxsize=4096)
def _epoch_second(seconds: int) -> tuple[str, str]:
    """:func:`stored` of a whole epoch second up to its fraction, and its New York day: cached,
    for streamed moments come by the thousand within a few seconds of each other."""
    moment = _EPOCH + timedelta(seconds=seconds)
    return stored(moment)[:-8], new_york_day(moment)


def stored_epoch(seconds: int, microseconds: int) -> str:
    """:func:`stored` of the moment ``microseconds`` (0–999,999) after epoch second
    ``seconds``."""
    return f"{_epoch_second(seconds)[0]}.{microseconds:06d}Z"


def new_york_day_epoch(seconds: int) -> str:
    """:func:`new_york_day` of any moment within epoch second ``seconds``."""
    return _epoch_second(seconds)[1]


def parse(text: object) -> datetime:
    """An RFC 3339 moment as Alpaca writes it (see the module docstring), as aware UTC;
    ``ValueError`` for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"expected an RFC 3339 moment, got {type(text).__name__}")
    return _utc(datetime.fromisoformat(text))


def parse_stored(text: bytes | str | None) -> datetime | None:
    """The moment :func:`stored` (or Alpaca, see :func:`parse`) wrote; None for a missing or
    unreadable value."""
    if not text:
        return None
    try:
        return parse(text.decode() if isinstance(text, bytes) else text)
    except ValueError:
        return None


def from_epoch(number: object) -> datetime:
    """An epoch number in seconds or milliseconds (by magnitude, see the module docstring) as
    aware UTC; ``ValueError`` for anything but a finite number in ``datetime``'s range."""
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ValueError(f"expected an epoch number, got {type(number).__name__}")
    try:
        if abs(number) >= MILLISECONDS_FROM:
            return _EPOCH + timedelta(milliseconds=number)
        return _EPOCH + timedelta(seconds=number)
    except (OverflowError, ValueError) as error:
        raise ValueError(f"epoch number out of range: {number!r}") from error


def iso(moment: datetime | None) -> str | None:
    """A moment as the API shows it (None stays None)."""
    return None if moment is None else _utc(moment).isoformat().replace("+00:00", "Z")


def iso_ms(moment: datetime) -> str:
    """A moment to the millisecond, as socket messages and stats carry it."""
    return _utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_york_day(moment: datetime) -> str:
    """The New York calendar date of a moment, ``YYYY-MM-DD``."""
    return moment.astimezone(NEW_YORK).date().isoformat()


def new_york(moment: datetime, nanoseconds: int | None = None) -> str:
    """A moment as New York wall time with its offset: as precise as the moment is, or with
    nine fraction digits — the microseconds, then ``nanoseconds`` (0–999; a ``datetime`` has
    no finer digits)."""
    local = _utc(moment).astimezone(NEW_YORK)
    if nanoseconds is None:
        return local.isoformat()
    if not 0 <= nanoseconds < 1000:
        raise ValueError("nanoseconds are 0..999 beyond the microsecond")
    offset = local.isoformat()[-6:]  # ±hh:mm: New York's offsets are whole minutes
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond:06d}{nanoseconds:03d}{offset}"
