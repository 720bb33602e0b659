"""Working time (工作时/工作日): office hours on working days, China's holidays and 调休.

Which dates are working days, first answer wins (each answer names its `source`):
1. `override`: an operator's word on one date (`gridgov calendar set`, table `calendar_override`);
2. `official`: a published schedule: a State Council notice imported by an operator
   (`gridgov calendar import`), else the `chinese-calendar` package's data (up to its data
   year); only the dates a schedule names (holidays, 调休 working weekends) say `official`;
3. `rule`: for a year with no published schedule, the statutory holidays computed by rule
   (dispatch/holidays.py), logged once per year and process, and reported by `/v1/calendar`;
4. `weekend` / `weekday`: every other date (Saturday and Sunday rest).
Limits in working days count as that many full office days of working hours, so a clock that
starts mid-afternoon ends mid-afternoon.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

from dispatch.holidays import rule_rest_days
from taxonomy.catalogue import TimeUnit

log = logging.getLogger("gridgov.calendar")

_MAX_DAYS_SCANNED = 3 * 366  # a limit that needs more working days than this is a config error
_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_office_hours(spec: str) -> tuple[tuple[time, time], ...]:
    """Parse "08:30-12:00,14:00-17:30" into ordered, non-overlapping intervals."""
    intervals: list[tuple[time, time]] = []
    for part in spec.split(","):
        m = _INTERVAL.match(part)
        if not m:
            raise ValueError(f"bad office-hours interval {part!r}; expected HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if not (0 <= h1 <= 23 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60):
            raise ValueError(f"bad office-hours interval {part!r}")
        start = time(h1, m1)
        end = time.max if (h2, m2) == (24, 0) else time(h2, m2)
        if end <= start:
            raise ValueError(f"office-hours interval {part!r} ends before it starts")
        if intervals and start < intervals[-1][1]:
            raise ValueError("office-hours intervals must be ordered and not overlap")
        intervals.append((start, end))
    if not intervals:
        raise ValueError("office hours are empty")
    return tuple(intervals)


class DaySource(StrEnum):
    """Where a date's working/rest status comes from (the contract's `source`)."""

    OFFICIAL = "official"  # a published schedule names this date
    RULE = "rule"  # a statutory holiday computed for a year without a published schedule
    OVERRIDE = "override"  # an operator's word (`gridgov calendar set`)
    WEEKEND = "weekend"
    WEEKDAY = "weekday"


@dataclass(frozen=True)
class CalendarDay:
    day: date
    workday: bool
    source: DaySource
    note: str = ""  # the holiday's name or the operator's note


@lru_cache(maxsize=8192)
def packaged_day(day: date) -> tuple[bool, str | None] | None:
    """chinese-calendar's (is working day, holiday or 调休 name), or None for a year it lacks."""
    try:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    return (not is_holiday, name)


@lru_cache(maxsize=512)
def package_knows(year: int) -> bool:
    return packaged_day(date(year, 6, 30)) is not None


_warned_years: set[int] = set()
_warned_lock = threading.Lock()


def _warn_unpublished(year: int) -> None:
    """Log once per year and process that a year's rest days are a computed guess."""
    if year in _warned_years:
        return
    with _warned_lock:
        if year in _warned_years:
            return
        _warned_years.add(year)
    log.warning(
        "calendar: no published holiday schedule for %d; its statutory holidays are computed "
        "by rule and its 调休 working weekends are unknown; import the State Council notice "
        "with `gridgov calendar import FILE`",
        year,
    )


def unpublished_warning(year: int) -> str:
    """The warning `/v1/calendar` gives for a year without a published schedule."""
    return (
        f"no published holiday schedule for {year}: its statutory holidays are computed by rule "
        f"(source 'rule') and its make-up working weekends (调休) are unknown until an operator "
        f"imports the State Council notice"
    )


@dataclass(frozen=True)
class WorkCalendar:
    office_hours: tuple[tuple[time, time], ...]
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    overrides: Mapping[date, bool] = field(default_factory=dict)
    # An imported notice: the dates it names, and the years it covers completely.
    official: Mapping[date, bool] = field(default_factory=dict)
    published_years: frozenset[int] = frozenset()
    notes: Mapping[date, str] = field(default_factory=dict)

    def is_published(self, year: int) -> bool:
        """Whether a published schedule (imported notice or the package's data) covers `year`."""
        return year in self.published_years or package_knows(year)

    def unpublished_years(self, first: date, last: date) -> list[int]:
        return [y for y in range(first.year, last.year + 1) if not self.is_published(y)]

    def day(self, day: date) -> CalendarDay:
        """Whether `day` is a working day, and why."""
        workday, source, name = self._resolve(day)
        return CalendarDay(day, workday, source, self.notes.get(day, name or ""))

    def _resolve(self, day: date) -> tuple[bool, DaySource, str | None]:
        override = self.overrides.get(day)
        if override is not None:
            return override, DaySource.OVERRIDE, None
        official = self.official.get(day)
        if official is not None:
            return official, DaySource.OFFICIAL, None
        if day.year not in self.published_years:
            packaged = packaged_day(day)
            if packaged is None:
                _warn_unpublished(day.year)
                name = rule_rest_days(day.year).get(day)
                if name is not None:
                    return False, DaySource.RULE, name
            elif packaged[1] is not None:
                return packaged[0], DaySource.OFFICIAL, packaged[1]
        if day.weekday() >= 5:
            return False, DaySource.WEEKEND, None
        return True, DaySource.WEEKDAY, None

    @property
    def seconds_per_day(self) -> float:
        return sum(_seconds(a, b) for a, b in self.office_hours)

    def is_workday(self, day: date) -> bool:
        return self._resolve(day)[0]

    def _work_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_workday(day):
            return []
        return [(_at(day, a, self.tz), _at(day, b, self.tz)) for a, b in self.office_hours]

    def add_working_seconds(self, start: datetime, seconds: float) -> datetime:
        """The instant when `seconds` of office time have passed since `start`."""
        if seconds < 0:
            raise ValueError("cannot add negative working time")
        local = start.astimezone(self.tz)
        remaining = timedelta(seconds=seconds)
        day = local.date()
        for _ in range(_MAX_DAYS_SCANNED):
            for a, b in self._work_intervals(day):
                if local >= b:
                    continue
                seg_start = max(local, a)
                available = b - seg_start
                if remaining <= available:
                    return (seg_start + remaining).astimezone(UTC)
                remaining -= available
            day += timedelta(days=1)
        raise ValueError("no working time found within three years; check calendar overrides")

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        """Office time between two instants (negative when end is before start)."""
        if end < start:
            return -self.working_seconds_between(end, start)
        a_local = start.astimezone(self.tz)
        b_local = end.astimezone(self.tz)
        total = 0.0
        day = a_local.date()
        while day <= b_local.date():
            for a, b in self._work_intervals(day):
                lo = max(a, a_local)
                hi = min(b, b_local)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def seconds_for(self, amount: float, unit: TimeUnit) -> float:
        """A limit as seconds of its own kind of time (natural or office)."""
        if unit is TimeUnit.NATURAL_HOURS:
            return amount * 3600.0
        if unit is TimeUnit.WORKING_HOURS:
            return amount * 3600.0
        return amount * self.seconds_per_day

    def add(self, start: datetime, amount: float, unit: TimeUnit) -> datetime:
        """Deadline `amount` units after `start`."""
        return self.add_seconds(start, self.seconds_for(amount, unit), unit)

    def add_seconds(self, start: datetime, seconds: float, unit: TimeUnit) -> datetime:
        if unit is TimeUnit.NATURAL_HOURS:
            return start + timedelta(seconds=seconds)
        return self.add_working_seconds(start, seconds)

    def seconds_between(self, start: datetime, end: datetime, unit: TimeUnit) -> float:
        """Elapsed time between two instants, counted the way `unit` counts it."""
        if unit is TimeUnit.NATURAL_HOURS:
            return (end - start).total_seconds()
        return self.working_seconds_between(start, end)


def _at(day: date, t: time, tz: ZoneInfo) -> datetime:
    """`t` on `day`; time.max stands for 24:00, the midnight that ends the day."""
    if t == time.max:
        return datetime.combine(day + timedelta(days=1), time(0), tz)
    return datetime.combine(day, t, tz)


def _seconds(a: time, b: time) -> float:
    day = date(2000, 1, 3)
    return (_at(day, b, UTC_ZONE) - _at(day, a, UTC_ZONE)).total_seconds()


UTC_ZONE = ZoneInfo("UTC")
