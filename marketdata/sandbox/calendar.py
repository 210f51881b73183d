"""Trading calendars for the sandbox: always open (the default) or the NYSE's real sessions.

Always-open lets the demo and the tests live at any hour and on weekends; the NYSE calendar
(``--calendar nyse``) reproduces regular hours, weekends, holidays and early closes so the clock
endpoint and intraday history behave as they do against Alpaca. Crypto always trades 24/7.
A trading day is named by its date in New York, as Alpaca's daily bars and history are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Session:
    """One trading day: its New York date and its open and close in UTC.

    UTC, so that arithmetic on them is absolute time: Python adds and subtracts aware
    datetimes of one zone in wall-clock time, which is wrong across a DST change.
    """

    day: date
    open: datetime
    close: datetime


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm); Good Friday is two days before."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """Saturday holidays are observed on Friday, Sunday holidays on Monday."""
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@cache
def nyse_holidays(year: int) -> frozenset[date]:
    """The NYSE's full-day closures for a year (rules in force since 2022)."""
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial Day
        _observed(date(year, 6, 19)),  # Juneteenth
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # a Saturday New Year's Day is not observed on the Friday before
        days.add(_observed(new_year))
    return frozenset(days)


@cache
def nyse_early_closes(year: int) -> frozenset[date]:
    """Days the NYSE closes at 13:00: July 3, the day after Thanksgiving, Christmas Eve."""
    candidates = {
        date(year, 7, 3),
        _nth_weekday(year, 11, 3, 4) + timedelta(days=1),
        date(year, 12, 24),
    }
    return frozenset(d for d in candidates if d.weekday() < 5 and d not in nyse_holidays(year))


def _utc(day: date, at: time) -> datetime:
    return datetime.combine(day, at, NEW_YORK).astimezone(UTC)


class Calendar:
    """Base calendar: every day is a 24-hour session starting at midnight in New York."""

    name = "always_open"

    def is_trading_day(self, day: date) -> bool:
        return True

    def session(self, day: date) -> Session | None:
        if not self.is_trading_day(day):
            return None
        return Session(day, _utc(day, time(0)), _utc(day + timedelta(days=1), time(0)))

    def sessions(self, first: date, last: date) -> list[Session]:
        """Sessions whose day lies in [first, last], oldest first."""
        out: list[Session] = []
        day = first
        while day <= last:
            session = self.session(day)
            if session is not None:
                out.append(session)
            day += timedelta(days=1)
        return out

    def session_at(self, moment: datetime) -> Session | None:
        """The session open at ``moment``, if any."""
        session = self.session(moment.astimezone(NEW_YORK).date())
        if session is not None and session.open <= moment < session.close:
            return session
        return None

    def is_open(self, moment: datetime) -> bool:
        return self.session_at(moment) is not None

    def _walk(self, day: date, step: int) -> Iterator[Session]:
        """Sessions from ``day`` on, forward (``step`` 1) or backward (-1), without end."""
        while True:
            session = self.session(day)
            if session is not None:
                yield session
            day += timedelta(days=step)

    def current_or_previous(self, moment: datetime) -> Session:
        """The session open at ``moment`` or else the last one that has opened before it."""
        day = moment.astimezone(NEW_YORK).date()
        return next(s for s in self._walk(day, -1) if s.open <= moment)

    def previous(self, session: Session) -> Session:
        return next(self._walk(session.day - timedelta(days=1), -1))

    def next_open(self, moment: datetime) -> datetime:
        day = moment.astimezone(NEW_YORK).date()
        return next(s.open for s in self._walk(day, 1) if s.open > moment)

    def next_close(self, moment: datetime) -> datetime:
        day = moment.astimezone(NEW_YORK).date()
        return next(s.close for s in self._walk(day, 1) if s.close > moment)


class AlwaysOpen(Calendar):
    """Trades around the clock, every day: crypto always, stocks in the sandbox by default."""


class NyseCalendar(Calendar):
    """Regular NYSE hours, 09:30–16:00 New York time, with holidays and early closes."""

    name = "nyse"

    def is_trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in nyse_holidays(day.year)

    def session(self, day: date) -> Session | None:
        if not self.is_trading_day(day):
            return None
        close = time(13) if day in nyse_early_closes(day.year) else time(16)
        return Session(day, _utc(day, time(9, 30)), _utc(day, close))


CALENDARS: dict[str, type[Calendar]] = {"always_open": AlwaysOpen, "nyse": NyseCalendar}
