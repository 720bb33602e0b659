"""The calendar's stored schedule: operators' overrides, imported notices, published years.

Services flush, never commit. Processes read the schedule through `CalendarProvider`
(dispatch/service.py) and see a change within its refresh interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from core.errors import InvalidCalendar, InvalidRange
from dispatch.calendar import CalendarDay, WorkCalendar, unpublished_warning
from dispatch.calendar_notice import Notice
from dispatch.holidays import RULE_YEARS
from dispatch.models import CalendarOverride, CalendarSource, CalendarYear, Case, CaseStatus

MAX_LISTED_DAYS = 400
"""`GET /v1/calendar` answers at most this many dates (a year and a month, with margin)."""

NEXT_YEAR_LOOKAHEAD_DAYS = 60
"""`calendar check` counts next year as in use from this many days before it starts: notices
come out in October or November, and two months covers the longest limits (20 working days)
started in December."""

FINISHED = (CaseStatus.CLOSED, CaseStatus.REJECTED, CaseStatus.MERGED)


@dataclass(frozen=True)
class Schedule:
    """What the database says about dates: overrides, imported official dates, published years."""

    overrides: dict[date, bool] = field(default_factory=dict)
    official: dict[date, bool] = field(default_factory=dict)
    notes: dict[date, str] = field(default_factory=dict)
    published_years: frozenset[int] = frozenset()

    def calendar(self, office_hours: tuple[tuple[time, time], ...], tz: ZoneInfo) -> WorkCalendar:
        return WorkCalendar(
            office_hours,
            tz,
            overrides=self.overrides,
            official=self.official,
            published_years=self.published_years,
            notes=self.notes,
        )


def load_schedule(session: Session) -> Schedule:
    overrides: dict[date, bool] = {}
    official: dict[date, bool] = {}
    notes: dict[date, str] = {}
    for row in session.execute(select(CalendarOverride)).scalars():
        target = official if row.source == CalendarSource.OFFICIAL else overrides
        target[row.day] = row.is_workday
        if row.note:
            notes[row.day] = row.note
    years = frozenset(session.execute(select(col(CalendarYear.year))).scalars())
    return Schedule(overrides, official, notes, years)


def set_override(session: Session, *, day: date, is_workday: bool, note: str) -> None:
    """Insert or replace the operator's word on one date (it wins over any schedule)."""
    row = session.get(CalendarOverride, day)
    if row is None:
        row = CalendarOverride(day=day, is_workday=is_workday, note=note)
    row.is_workday = is_workday
    row.note = note
    row.source = CalendarSource.OVERRIDE.value
    row.schedule_year = None
    session.add(row)
    session.flush()


def entries(session: Session) -> list[CalendarOverride]:
    """Every stored date, overrides and imported ones, in date order."""
    return list(
        session.execute(select(CalendarOverride).order_by(col(CalendarOverride.day))).scalars()
    )


@dataclass(frozen=True)
class ImportResult:
    year: int
    rest_days: int
    workdays: int
    kept_overrides: list[date]


def _publish(session: Session, *, year: int, note: str, now: datetime) -> None:
    row = session.get(CalendarYear, year)
    if row is None:
        row = CalendarYear(year=year, note=note, published_at=now)
    row.note = note
    row.published_at = now
    session.add(row)


def import_notice(session: Session, *, notice: Notice, now: datetime) -> ImportResult:
    """Store a year's published schedule in place of an earlier import of the same year.

    Dates an operator overrode keep the override (it is the later, local word).
    """
    session.execute(
        delete(CalendarOverride).where(
            col(CalendarOverride.source) == CalendarSource.OFFICIAL.value,
            col(CalendarOverride.schedule_year) == notice.year,
        )
    )
    kept: list[date] = []
    for entry in notice.days:
        row = session.get(CalendarOverride, entry.day)
        if row is not None and row.source == CalendarSource.OVERRIDE:
            kept.append(entry.day)
            continue
        if row is None:
            row = CalendarOverride(day=entry.day, is_workday=entry.workday)
        row.is_workday = entry.workday
        row.note = entry.note
        row.source = CalendarSource.OFFICIAL.value
        row.schedule_year = notice.year
        session.add(row)
    _publish(session, year=notice.year, note=notice.note, now=now)
    session.flush()
    return ImportResult(
        year=notice.year,
        rest_days=sum(not d.workday for d in notice.days),
        workdays=sum(d.workday for d in notice.days),
        kept_overrides=kept,
    )


def publish_year(session: Session, *, year: int, note: str, now: datetime) -> None:
    """Declare `year`'s schedule complete as entered day by day (its rule holidays stop)."""
    if year not in RULE_YEARS:
        raise InvalidCalendar(
            problems=[f"year {year} is outside {RULE_YEARS.start}-{RULE_YEARS.stop - 1}"]
        )
    _publish(session, year=year, note=note, now=now)
    session.flush()


def years_in_use(
    session: Session,
    *,
    now: datetime,
    tz: ZoneInfo,
    lookahead_days: int = NEXT_YEAR_LOOKAHEAD_DAYS,
) -> list[int]:
    """This year; next year from `lookahead_days` before it; every year an open case's deadline
    falls in (an overdue case of last year is still measured with last year's calendar)."""
    today = now.astimezone(tz).date()
    first, last = today.year, (today + timedelta(days=lookahead_days)).year
    earliest, latest = session.execute(
        select(func.min(col(Case.due_at)), func.max(col(Case.due_at))).where(
            col(Case.status).not_in([s.value for s in FINISHED]), col(Case.due_at).is_not(None)
        )
    ).one()
    if earliest is not None:
        first = min(first, earliest.astimezone(tz).year)
    if latest is not None:
        last = max(last, latest.astimezone(tz).year)
    return list(range(first, last + 1))


def unpublished_years_in_use(
    session: Session, *, calendar: WorkCalendar, now: datetime, lookahead_days: int
) -> tuple[list[int], list[int]]:
    """(years in use, those of them without a published schedule)."""
    years = years_in_use(session, now=now, tz=calendar.tz, lookahead_days=lookahead_days)
    return years, [y for y in years if not calendar.is_published(y)]


def list_days(
    calendar: WorkCalendar, *, first: date, last: date
) -> tuple[list[CalendarDay], list[str]]:
    """Each date of [first, last] with its status and source, and a warning per guessed year."""
    length = (last - first).days + 1
    if (
        last < first
        or length > MAX_LISTED_DAYS
        or first.year not in RULE_YEARS
        or last.year not in RULE_YEARS
    ):
        raise InvalidRange(
            first=first.isoformat(),
            last=last.isoformat(),
            max_days=MAX_LISTED_DAYS,
            years=f"{RULE_YEARS.start}-{RULE_YEARS.stop - 1}",
        )
    days = [calendar.day(first + timedelta(days=n)) for n in range(length)]
    return days, [unpublished_warning(y) for y in calendar.unpublished_years(first, last)]
