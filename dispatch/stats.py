"""考核 figures: per department or per area (town, village, grid) over a period of local days,
read from the case table (closures, deadlines, handling time) and the history table (what was
done, when). Every figure is defined in the README ("Statistics"). The days up to the last
refresh of the rollup come from it (dispatch/stats_rollup.py writes it with `live_counts`, the
query the later days are computed with), the others live; the parts are added.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    Table,
    and_,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy import case as when
from sqlmodel import Session, col

from dispatch.models import (
    Case,
    CaseHistory,
    CaseStatus,
    Department,
    StatsDaily,
    StatsMonthly,
    StatsRollup,
)
from grid.models import Area

# Digits of an area code at each level a statistic is asked for.
VILLAGE_DIGITS, GRID_DIGITS = 12, 15
LEVEL_DIGITS = {"town": 9, "village": VILLAGE_DIGITS, "grid": GRID_DIGITS}
# `stats_monthly.department_code` of the per-grid rows (every department summed).
ALL_DEPARTMENTS = ""
_DAILY: Table = StatsDaily.__table__  # type: ignore[attr-defined]
_MONTHLY: Table = StatsMonthly.__table__  # type: ignore[attr-defined]
# `visit` answers that count as satisfied (满意 and 基本满意).
SATISFIED = ("satisfied", "basically_satisfied")
# History actions an extension granted is recorded as (the old direct one, and an approval).
EXTENSIONS = ("extend", "approve_extension")
# The history actions some figure counts.
COUNTED_ACTIONS = ("dispatch", "recategorize", "return", "verify", "reopen", "visit", *EXTENSIONS)

FIGURES = (
    "received",
    "closed",
    "on_time",
    "overdue",
    "on_time_rate",
    "returned",
    "extended",
    "redone",
    "visited",
    "satisfied",
    "satisfaction_rate",
    "avg_handling_working_hours",
)


class Figures(BaseModel):
    received: int
    closed: int
    on_time: int
    overdue: int
    on_time_rate: float | None
    returned: int
    extended: int
    redone: int
    visited: int
    satisfied: int
    satisfaction_rate: float | None
    avg_handling_working_hours: float | None


class DepartmentFigures(Figures):
    department_code: str
    department_name: str


class AreaFigures(Figures):
    area_code: str
    area_name: str
    level: str


class DepartmentStatsOut(BaseModel):
    items: list[DepartmentFigures]


class AreaStatsOut(BaseModel):
    items: list[AreaFigures]


@dataclass
class Counts:
    received: int = 0
    closed: int = 0
    on_time: int = 0
    returned: int = 0
    extended: int = 0
    redone: int = 0
    visited: int = 0
    satisfied: int = 0
    handling_seconds: float = 0.0
    handled: int = 0

    @classmethod
    def of(cls, values: Sequence[Any]) -> Counts:
        """From sums in the order of `COUNT_FIELDS` (as the rollup tables hold them)."""
        counts = cls(*(int(v) for v in values))
        counts.handling_seconds = float(values[COUNT_FIELDS.index("handling_seconds")])
        return counts

    def add(self, other: Counts) -> None:
        """Sums of disjoint parts (days, departments, grids) are the sums of the whole."""
        for name in COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def figures(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "closed": self.closed,
            "on_time": self.on_time,
            "overdue": self.closed - self.on_time,
            "on_time_rate": _rate(self.on_time, self.closed),
            "returned": self.returned,
            "extended": self.extended,
            "redone": self.redone,
            "visited": self.visited,
            "satisfied": self.satisfied,
            "satisfaction_rate": _rate(self.satisfied, self.visited),
            "avg_handling_working_hours": (
                round(self.handling_seconds / self.handled / 3600, 2) if self.handled else None
            ),
        }


COUNT_FIELDS = tuple(Counts.__dataclass_fields__)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class Period:
    """Local days `first` to `last` (both included) as the UTC instants [start, end)."""

    first: date
    last: date
    start: datetime
    end: datetime
    tz: ZoneInfo

    @classmethod
    def of(cls, first: date, last: date, tz: ZoneInfo) -> Period:
        return cls(first, last, day_start(first, tz), day_start(last + timedelta(days=1), tz), tz)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The instant a local day begins."""
    return datetime.combine(day, time(0), tz)


@dataclass(frozen=True)
class Scope:
    """Whose cases count: a scoped command centre's area (a code prefix) and, for a department,
    its own row only."""

    area_code: str | None = None
    department_code: str | None = None


def _sum(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(when((condition, 1), else_=0)), 0)


def department_of_history() -> ColumnElement[Any]:
    """The department a history row concerns: the one it names (dispatch, return, the new one
    of a recategorize), else the case's own (the department that handles it)."""
    return func.coalesce(
        col(CaseHistory.data)["department_code"].as_string(), col(Case.department_code)
    )


def no_jit(session: Session) -> None:
    """PostgreSQL's JIT spends ~0.2 s compiling these aggregates before a scan it does not
    shorten (bench/stats.py); off for this transaction only."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def live_counts(
    session: Session,
    *,
    history_keys: Sequence[Any],
    case_keys: Sequence[Any],
    start: datetime,
    end: datetime,
    scope: Scope = Scope(),
    key_filter: str | None = None,
) -> Iterator[tuple[tuple[Any, ...], Counts]]:
    """The counts straight from the base tables (`count_queries`); a key may come twice (add
    them)."""
    width = len(history_keys)
    for query in count_queries(
        history_keys=history_keys,
        case_keys=case_keys,
        start=start,
        end=end,
        scope=scope,
        key_filter=key_filter,
    ):
        for row in session.execute(query).tuples():
            yield tuple(row[:width]), Counts.of(row[width:])


def count_queries(
    *,
    history_keys: Sequence[Any],
    case_keys: Sequence[Any],
    start: datetime,
    end: datetime,
    scope: Scope = Scope(),
    key_filter: str | None = None,
) -> tuple[Select[Any], Select[Any]]:
    """Two grouped queries for the instants [start, end): the history rows in it (joined to
    their case) and the cases closed in it, by the given keys (`k0`, `k1`, …: one set over
    the history, the same set over the case table), each giving every count of
    `COUNT_FIELDS` in that order (zeros for the other query's). A `key_filter` keeps the rows
    whose first key has that value."""
    h_action, h_at = col(CaseHistory.action), col(CaseHistory.at)
    data = col(CaseHistory.data)
    satisfaction = data["satisfaction"].as_string()
    # 改类 of a dispatched case to another unit dispatches it to that unit.
    moved = and_(
        h_action == "recategorize",
        col(CaseHistory.to_status) == CaseStatus.DISPATCHED.value,
        data["department_code"].as_string() != data["department_from"].as_string(),
    )
    history_where: list[ColumnElement[bool]] = [
        h_action.in_(COUNTED_ACTIONS),
        h_at >= start,
        h_at < end,
    ]
    case_where: list[ColumnElement[bool]] = [
        col(Case.status) == CaseStatus.CLOSED.value,
        col(Case.closed_at) >= start,
        col(Case.closed_at) < end,
    ]
    if scope.area_code:
        history_where.append(col(Case.grid_code).startswith(scope.area_code))
        case_where.append(col(Case.grid_code).startswith(scope.area_code))
    if key_filter is not None:
        history_where.append(history_keys[0] == key_filter)
        case_where.append(case_keys[0] == key_filter)
    handling = col(Case.handling_seconds)
    from_history: dict[str, Any] = {
        "received": _sum(or_(h_action == "dispatch", moved)),
        "returned": _sum(h_action == "return"),
        "extended": _sum(h_action.in_(EXTENSIONS)),
        "redone": _sum(
            or_(
                h_action == "reopen",
                and_(h_action == "verify", col(CaseHistory.to_status) != "verified"),
            )
        ),
        "visited": _sum(h_action == "visit"),
        "satisfied": _sum(and_(h_action == "visit", satisfaction.in_(SATISFIED))),
    }
    from_cases: dict[str, Any] = {
        "closed": func.count(),
        "on_time": _sum(col(Case.resolved_at) <= col(Case.due_at)),
        "handling_seconds": func.coalesce(func.sum(handling), 0.0),
        "handled": func.count(handling),
    }
    history = (
        select(*_labelled(history_keys), *_all_counts(from_history))
        .select_from(CaseHistory)
        .join(Case, col(Case.id) == col(CaseHistory.case_id))
        .where(*history_where)
        .group_by(*history_keys)
    )
    closed = (
        select(*_labelled(case_keys), *_all_counts(from_cases))
        .where(*case_where)
        .group_by(*case_keys)
    )
    return history, closed


def _labelled(keys: Sequence[Any]) -> list[Any]:
    return [key.label(f"k{i}") for i, key in enumerate(keys)]


def _all_counts(given: dict[str, Any]) -> list[Any]:
    """Every count in `COUNT_FIELDS` order, named; those not given are zeros."""
    return [
        given.get(
            name,
            literal(0.0, Float) if name == "handling_seconds" else literal(0, Integer),
        ).label(name)
        for name in COUNT_FIELDS
    ]


def rolled_through(session: Session) -> date | None:
    """The last local day the rollup holds complete (None: never built, all live)."""
    return session.execute(
        select(col(StatsRollup.rolled_through)).where(col(StatsRollup.id) == 1)
    ).scalar_one_or_none()


def _months_and_days(first: date, last: date) -> tuple[list[date], list[tuple[date, date]]]:
    """[first, last] as the calendar months it holds whole (their first days) and the day
    ranges left at either end."""
    months: list[date] = []
    days: list[tuple[date, date]] = []
    month = first.replace(day=1)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        a, b = max(first, month), min(last, following - timedelta(days=1))
        if (a, b) == (month, following - timedelta(days=1)):
            months.append(month)
        elif days and days[-1][1] + timedelta(days=1) == a:
            days[-1] = (days[-1][0], b)
        else:
            days.append((a, b))
        month = following
    return months, days


def _rolled_counts(
    session: Session,
    *,
    first: date,
    last: date,
    key_digits: int | None,
    scope: Scope,
    key_filter: str | None,
) -> Iterator[tuple[str, Counts]]:
    """Sums of rollup rows over local days [first, last], by department (`key_digits` None) or
    by the area code of that many digits: whole months from the monthly rows (per department
    and village, or per grid), the other days from the daily rows."""
    months, day_ranges = _months_and_days(first, last)
    if scope.area_code and len(scope.area_code) > VILLAGE_DIGITS:
        # Finer than the monthly rows per department: every day from the daily rows.
        months, day_ranges = [], [(first, last)]
    parts: list[tuple[Table, ColumnElement[Any], list[ColumnElement[bool]]]] = []
    if months:
        where: list[ColumnElement[bool]] = [_MONTHLY.c.month.in_(months)]
        if key_digits is None:
            where.append(_MONTHLY.c.department_code != ALL_DEPARTMENTS)
        else:
            where.append(_MONTHLY.c.department_code == ALL_DEPARTMENTS)
        parts.append((_MONTHLY, _MONTHLY.c.area_code, where))
    if day_ranges:
        in_days = or_(*(_DAILY.c.day.between(a, b) for a, b in day_ranges))
        parts.append((_DAILY, _DAILY.c.grid_code, [in_days]))
    for table, place, where in parts:
        if key_digits is None:
            key: ColumnElement[Any] = table.c.department_code
        else:
            key = place if key_digits == GRID_DIGITS else func.substr(place, 1, key_digits)
        if scope.area_code:
            where.append(place.startswith(scope.area_code))
        if key_filter is not None:
            where.append(key == key_filter)
        sums = (func.sum(table.c[name]) for name in COUNT_FIELDS)
        query = select(key, *sums).where(*where).group_by(key)
        for row in session.execute(query).tuples():
            yield str(row[0]), Counts.of(row[1:])


def _counts(
    session: Session,
    *,
    key_digits: int | None,
    period: Period,
    scope: Scope,
    key_filter: str | None,
    rollup: bool,
) -> dict[str, Counts]:
    """The counts of the period by key: the days the rollup holds from it, the rest (today,
    days not rolled yet) live from the base tables, added up."""
    no_jit(session)
    counts: dict[str, Counts] = {}
    live_first = period.first
    through = rolled_through(session) if rollup else None
    if through is not None and through >= period.first:
        rolled_last = min(through, period.last)
        for key, part in _rolled_counts(
            session,
            first=period.first,
            last=rolled_last,
            key_digits=key_digits,
            scope=scope,
            key_filter=key_filter,
        ):
            counts.setdefault(key, Counts()).add(part)
        live_first = rolled_last + timedelta(days=1)
    if live_first > period.last:
        return counts
    live = Period.of(live_first, period.last, period.tz)
    history_key: Any
    case_key: Any
    if key_digits is None:
        history_key, case_key = department_of_history(), col(Case.department_code)
    else:
        history_key = case_key = func.substr(col(Case.grid_code), 1, key_digits)
    for keys, part in live_counts(
        session,
        history_keys=[history_key],
        case_keys=[case_key],
        start=live.start,
        end=live.end,
        scope=scope,
        key_filter=key_filter,
    ):
        counts.setdefault(str(keys[0]), Counts()).add(part)
    return counts


def department_figures(
    session: Session, *, period: Period, scope: Scope, rollup: bool = True
) -> list[DepartmentFigures]:
    """One row per department (all of them, or the asking department's own). `rollup=False`
    computes every day live (the rollup's reference)."""
    counts = _counts(
        session,
        key_digits=None,
        period=period,
        scope=scope,
        key_filter=scope.department_code,
        rollup=rollup,
    )
    query = select(col(Department.code), col(Department.name), col(Department.active))
    if scope.department_code is not None:
        query = query.where(col(Department.code) == scope.department_code)
    rows = session.execute(query.order_by(col(Department.code))).tuples().all()
    return [
        DepartmentFigures(
            department_code=code, department_name=name, **counts.get(code, Counts()).figures()
        )
        for code, name, active in rows
        if active or code in counts
    ]


def area_figures(
    session: Session, *, level: str, period: Period, scope: Scope, rollup: bool = True
) -> list[AreaFigures]:
    """One row per area of the level (inside, or holding, a scoped command centre's area)."""
    digits = LEVEL_DIGITS[level]
    counts = _counts(
        session, key_digits=digits, period=period, scope=scope, key_filter=None, rollup=rollup
    )
    query = select(col(Area.code), col(Area.name), col(Area.active)).where(col(Area.level) == level)
    if scope.area_code:
        query = query.where(_within_or_holding(scope.area_code, digits))
    rows = session.execute(query.order_by(col(Area.code))).tuples().all()
    return [
        AreaFigures(
            area_code=code, area_name=name, level=level, **counts.get(code, Counts()).figures()
        )
        for code, name, active in rows
        if active or code in counts
    ]


def _within_or_holding(area_code: str, digits: int) -> ColumnElement[bool]:
    if digits >= len(area_code):
        return col(Area.code).startswith(area_code)
    return col(Area.code) == area_code[:digits]


def csv_rows(model: type[Figures], items: Iterable[Figures]) -> list[list[Any]]:
    """The items as CSV rows under a header: the JSON names, the item's names first."""
    header = [name for name in model.model_fields if name not in FIGURES] + list(FIGURES)
    rows: list[list[Any]] = [header]
    for item in items:
        values = item.model_dump()
        rows.append(["" if values[name] is None else values[name] for name in header])
    return rows
