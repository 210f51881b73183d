"""Portfolio history as Alpaca's Broker API computes it, from the world's ledger.

``GET /v1/trading/accounts/{id}/account/portfolio/history`` accepts:

* ``period``: a number and a unit, ``D`` (trading sessions), ``W``, ``M`` or ``A`` (years);
  anything else, ``1Y`` and ``MAX`` included, is 422 ``invalid period``. For all time ask for
  ``start`` = the account's creation date with ``timeframe=1D``.
* ``timeframe``: 1Min, 5Min, 15Min, 1H or 1D. Omitted: 1Min below 7 days, 15Min below 30,
  else 1D. Intraday timeframes cover at most 30 days (a longer span is 422), as at Alpaca.
* ``start`` / ``end`` / ``date_end`` (RFC3339 or a New York date) and ``period``: at most two
  of start, end and period. start+period runs forward, end+period backward; start alone runs
  to now; nothing at all is the last month.
* ``intraday_reporting``: ``market_hours`` (default) keeps bars inside the stock calendar's
  sessions (all day in the default always-open mode); ``extended_hours`` keeps 04:00–20:00
  New York on trading days (all day when always open); ``continuous`` keeps every step, 24/7.
  The legacy ``extended_hours=true`` means ``intraday_reporting=extended_hours``.
* ``pnl_reset``: ``per_day`` (default) measures each intraday point against the equity at
  the close of the session before its own; ``no_reset`` against the first point. A 1D series
  is always measured against its first point.
* ``cashflow_types``: ``ALL``, ``NONE`` or a comma list of activity types; default CSD,CSW.

What comes back:

* Intraday timestamps are bar starts (sessions' bars are anchored at the open); each value is
  the equity at the end of its bar. Daily timestamps are the session day at 00:00 New York and
  the value is the day's close.
* Points are never before the account was created (a daily series starts on its creation
  day) and never after now. When the window reaches now, the last point is the live equity,
  exactly what the trade account reports.
* ``profit_loss`` = equity − base and ``profit_loss_pct`` = equity / base − 1, a simple return
  that does not adjust for deposits. When the natural base is 0 (an account funded inside the
  window) the base becomes the first non-zero equity, as Alpaca does; points before it, and
  every point of an account that never had value, have a null ``profit_loss_pct``.
  ``base_value`` and ``base_value_asof`` are those of the last point; ``base_value_asof`` is
  left out when there is no non-zero base.
* ``cashflow[type][i]`` is the amount of that type booked after the previous point's
  valuation up to point i's: for the first point, since its bar began (intraday) or since the
  day before closed (daily); for the last point of a window that reaches now, up to now.
  Withdrawals (CSW) are negative. A type whose amounts are all zero is left out.
* A window with no points (an ``end`` before the account existed) answers empty arrays with a
  null ``base_value``; a new, empty account answers zero-valued points since its creation.
"""

from __future__ import annotations

import calendar as months
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from .accounts import CASHFLOW_TYPES, RATIO, ZERO, Account
from .calendar import NEW_YORK, Calendar
from .errors import ApiError, invalid
from .wire import PortfolioHistory
from .world import World

TICK = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INTRADAY = {
    "1Min": timedelta(minutes=1),
    "5Min": timedelta(minutes=5),
    "15Min": timedelta(minutes=15),
    "1H": timedelta(hours=1),
}
DAILY = "1D"
REPORTING = ("market_hours", "extended_hours", "continuous")
PNL_RESETS = ("per_day", "no_reset")
#: Alpaca's limit on intraday series, in days.
INTRADAY_MAX_DAYS = 30
#: Nominal length of a period unit in days, for the defaults and the intraday limit.
UNIT_DAYS = {"D": 1, "W": 7, "M": 30, "A": 365}
PERIOD = re.compile(r"([1-9][0-9]{0,3})([DWMA])")
EXTENDED_OPEN = time(4)
EXTENDED_CLOSE = time(20)
#: A daily point counts activities up to this New York time, as ``World.equity_at`` does.
DAY_CUTOFF = time(23, 59, 59)


def parse_moment(name: str, value: str) -> datetime:
    """An RFC3339 timestamp, or a date meaning 00:00 New York; naive times are UTC."""
    value = value.strip()
    if len(value) == 10:
        try:
            return datetime.combine(date.fromisoformat(value), time(0), NEW_YORK)
        except ValueError:
            raise invalid(f"{name} must be an RFC3339 timestamp or a YYYY-MM-DD date") from None
    # An unescaped "+" in a hand-written query string arrives as a space.
    for candidate in (value, value.replace(" ", "+")):
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise invalid(f"{name} must be an RFC3339 timestamp or a YYYY-MM-DD date")


@dataclass(frozen=True)
class Period:
    count: int
    unit: str  # D | W | M | A

    @classmethod
    def parse(cls, value: str) -> Period:
        match = PERIOD.fullmatch(value)
        if match is None:
            raise ApiError(422, 42210000, "invalid period")
        return cls(int(match[1]), match[2])

    @property
    def days(self) -> int:
        return self.count * UNIT_DAYS[self.unit]

    def back(self, calendar: Calendar, end: datetime) -> datetime:
        """Start of the period ending at ``end``: D counts sessions, the rest the calendar."""
        if self.unit == "D":
            session = calendar.current_or_previous(end)
            for _ in range(self.count - 1):
                session = calendar.previous(session)
            return session.open
        return self._shift(end, -1)

    def forward(self, calendar: Calendar, start: datetime) -> datetime:
        """End of the period starting at ``start``: D counts sessions, the rest the calendar."""
        if self.unit == "D":
            close = calendar.next_close(start)
            for _ in range(self.count - 1):
                close = calendar.next_close(close)
            return close
        return self._shift(start, 1)

    def _shift(self, moment: datetime, sign: int) -> datetime:
        if self.unit == "W":
            return moment + sign * timedelta(weeks=self.count)
        local = moment.astimezone(NEW_YORK)
        shift = self.count * (12 if self.unit == "A" else 1)
        year, month = divmod(local.year * 12 + local.month - 1 + sign * shift, 12)
        year = min(max(year, 1), 9998)
        day = min(local.day, months.monthrange(year, month + 1)[1])
        return local.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class HistoryQuery:
    """The validated query parameters."""

    period: Period | None
    timeframe: str | None
    reporting: str
    pnl_reset: str
    start: datetime | None
    end: datetime | None
    cashflow_types: frozenset[str] | None  # None: every non-trade type

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> HistoryQuery:
        """Validate Alpaca's parameters; raises ApiError (422) naming the bad one."""
        period = Period.parse(params["period"]) if params.get("period") else None
        timeframe = params.get("timeframe") or None
        if timeframe is not None and timeframe != DAILY and timeframe not in INTRADAY:
            raise invalid("timeframe must be one of 1Min, 5Min, 15Min, 1H, 1D")
        extended = params.get("extended_hours")
        if extended is not None and extended.lower() not in ("true", "false"):
            raise invalid("extended_hours must be true or false")
        legacy = "extended_hours" if extended and extended.lower() == "true" else REPORTING[0]
        reporting = params.get("intraday_reporting") or legacy
        if reporting not in REPORTING:
            raise invalid(f"intraday_reporting must be one of {', '.join(REPORTING)}")
        pnl_reset = params.get("pnl_reset") or PNL_RESETS[0]
        if pnl_reset not in PNL_RESETS:
            raise invalid(f"pnl_reset must be one of {', '.join(PNL_RESETS)}")
        start = parse_moment("start", params["start"]) if params.get("start") else None
        end = parse_moment("end", params["end"]) if params.get("end") else None
        if params.get("date_end"):
            if end is not None:
                raise invalid("give end or date_end, not both")
            try:
                day = date.fromisoformat(params["date_end"])
            except ValueError:
                raise invalid("date_end must be a YYYY-MM-DD date") from None
            end = datetime.combine(day + timedelta(days=1), time(0), NEW_YORK)
        if start is not None and end is not None and period is not None:
            raise invalid("only two of start, end and period can be given")
        if start is not None and end is not None and end < start:
            raise invalid("end must not be before start")
        return cls(period, timeframe, reporting, pnl_reset, start, end, _cashflow_types(params))


def _cashflow_types(params: Mapping[str, str]) -> frozenset[str] | None:
    value = params.get("cashflow_types")
    if not value:
        return frozenset(CASHFLOW_TYPES)
    if value.upper() == "NONE":
        return frozenset()
    if value.upper() == "ALL":
        return None
    kinds = frozenset(kind.strip().upper() for kind in value.split(",") if kind.strip())
    if not all(kind.isalpha() for kind in kinds):
        raise invalid("cashflow_types must be ALL, NONE or a comma list of activity types")
    return kinds


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    timeframe: str
    live: bool  # the window reaches now: the last point is the live equity


def resolve_window(query: HistoryQuery, calendar: Calendar, now: datetime) -> Window:
    """Apply Alpaca's defaults and limits to the requested span and resolution."""
    period = query.period
    if query.start is not None and query.end is not None:
        start, end = query.start, query.end
    elif query.start is not None:
        start = query.start
        end = period.forward(calendar, start) if period else now
    else:
        end = query.end or now
        start = (period or Period(1, "M")).back(calendar, end)
    live = end >= now
    end = min(end, now)
    span_days = period.days if period else (end - start) / timedelta(days=1)
    timeframe = query.timeframe
    if timeframe is None:
        timeframe = "1Min" if span_days < 7 else "15Min" if span_days < INTRADAY_MAX_DAYS else DAILY
    if timeframe != DAILY and span_days > INTRADAY_MAX_DAYS:
        raise invalid(
            f"timeframe {timeframe} covers at most {INTRADAY_MAX_DAYS} days; use timeframe=1D"
        )
    return Window(start, end, timeframe, live)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), NEW_YORK)


def _daily_points(calendar: Calendar, window: Window, created: datetime) -> list[datetime]:
    """Sessions that open in the window, from the account's creation day on."""
    first = max(window.start, created).astimezone(NEW_YORK).date()
    last = calendar.current_or_previous(window.end).day
    return [
        _day_start(session.day)
        for session in calendar.sessions(first, last)
        if session.open >= window.start
    ]


def _intraday_points(
    calendar: Calendar, window: Window, step: timedelta, reporting: str, created: datetime
) -> list[datetime]:
    """Bar starts in [start, end): anchored at each session's open, or on the clock (24/7)."""
    start = max(window.start, created)
    end = window.end
    if start >= end:
        return []
    if reporting == "continuous":
        first = start + (EPOCH - start) % step  # the first step boundary at or after start
        return [first + step * i for i in range(-((first - end) // step))]
    points: list[datetime] = []
    first_day = start.astimezone(NEW_YORK).date() - timedelta(days=1)
    for session in calendar.sessions(first_day, end.astimezone(NEW_YORK).date()):
        opens, closes = session.open, session.close
        if reporting == "extended_hours":
            opens = min(opens, datetime.combine(session.day, EXTENDED_OPEN, NEW_YORK))
            closes = max(closes, datetime.combine(session.day, EXTENDED_CLOSE, NEW_YORK))
        bar = opens
        while bar < closes and bar < end:
            if bar >= start:
                points.append(bar)
            bar += step
    return points


def _cashflow(
    account: Account, kinds: frozenset[str] | None, bounds: list[datetime]
) -> dict[str, list[Decimal]]:
    """Per type, the amounts booked in (bounds[i], bounds[i + 1]] for each point i."""
    flows: dict[str, list[Decimal]] = {}
    points = len(bounds) - 1
    index = 0
    for activity in account.activities:
        if activity.at <= bounds[0]:
            continue
        if activity.at > bounds[-1]:
            break
        kind = activity.activity_type
        if kind == "FILL" or (kinds is not None and kind not in kinds):
            continue
        while activity.at > bounds[index + 1]:
            index += 1
        amounts = flows.setdefault(kind, [ZERO] * points)
        amounts[index] += activity.net_amount
    return {kind: amounts for kind, amounts in sorted(flows.items()) if any(amounts)}


@dataclass
class _Bases:
    """Each point's P/L base and the day whose balance it is."""

    values: list[Decimal]
    asof: list[date | None]


def _bases(equity: list[Decimal], groups: list[tuple[int, int, Decimal, date | None]]) -> _Bases:
    """Bases for runs of points [first, stop) measured against ``anchor`` (as of ``day``).

    A zero anchor gives way to the run's first non-zero equity; points before it have base 0.
    """
    bases = _Bases([ZERO] * len(equity), [None] * len(equity))
    for first, stop, anchor, day in groups:
        base, asof, begin = anchor, day, first
        if not anchor:
            begin = next((i for i in range(first, stop) if equity[i]), stop)
            base = equity[begin] if begin < stop else ZERO
            asof = None
        for i in range(begin, stop):
            bases.values[i] = base
            bases.asof[i] = asof
    return bases


def portfolio_history(
    world: World, account: Account, query: HistoryQuery, now: datetime
) -> PortfolioHistory:
    """The account's equity over the requested window, with P/L and cash flows."""
    calendar = world.market.stock_calendar
    window = resolve_window(query, calendar, now)
    daily = window.timeframe == DAILY
    if daily:
        points = _daily_points(calendar, window, account.created_at)
        cutoffs = [datetime.combine(p.date(), DAY_CUTOFF, NEW_YORK) for p in points]
        equity = world.equity_at(account, points, daily=True)
        window_start = cutoffs[0] - timedelta(days=1) if points else window.start
    else:
        step = INTRADAY[window.timeframe]
        points = _intraday_points(calendar, window, step, query.reporting, account.created_at)
        cutoffs = [min(point + step - TICK, now) for point in points]
        equity = world.equity_at(account, cutoffs, daily=False)
        window_start = points[0] - TICK if points else window.start
    if window.live and points:
        equity[-1] = world.equity(account)
        cutoffs[-1] = max(cutoffs[-1], now)
    flows = _cashflow(account, query.cashflow_types, [window_start, *cutoffs]) if points else {}

    if daily or query.pnl_reset == "no_reset":
        first_day = points[0].astimezone(NEW_YORK).date() if points else None
        groups = [(0, len(points), equity[0] if points else ZERO, first_day)]
    else:
        groups = _per_day_groups(world, account, calendar, points)
    bases = _bases(equity, groups)
    return PortfolioHistory(
        timeframe=window.timeframe,
        timestamps=[int(point.timestamp()) for point in points],
        equity=equity,
        profit_loss=[value - base for value, base in zip(equity, bases.values, strict=True)],
        profit_loss_pct=[
            (value / base - 1).quantize(RATIO) if base else None
            for value, base in zip(equity, bases.values, strict=True)
        ],
        base_value=bases.values[-1] if points else None,
        base_value_asof=bases.asof[-1] if points else None,
        cashflow=flows,
    )


def _per_day_groups(
    world: World, account: Account, calendar: Calendar, points: list[datetime]
) -> list[tuple[int, int, Decimal, date | None]]:
    """Runs of points by session, each anchored at the equity of the previous session's close."""
    runs: list[tuple[int, int, date]] = []
    for index, point in enumerate(points):
        day = calendar.current_or_previous(point).day
        if runs and runs[-1][2] == day:
            runs[-1] = (runs[-1][0], index + 1, day)
        else:
            runs.append((index, index + 1, day))
    previous = [calendar.previous(calendar.session(day)).day for _, _, day in runs]
    closes = world.equity_at(account, [_day_start(day) for day in previous], daily=True)
    return [
        (first, stop, close, day)
        for (first, stop, _), close, day in zip(runs, closes, previous, strict=True)
    ]
