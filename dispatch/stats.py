"""考核 figures: per department or per area (town, village, grid) over a period of local days,
read from the case table (closures, deadlines, handling time) and the history table (what was
done, when). Every figure is defined in the README ("Statistics"). The days up to the last
refresh of the rollup come from it (dispatch/stats_rollup.py writes it with `count_queries`,
the queries the later days are computed with), the others live; the parts are added.
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
# The rollup's `department_code` of the per-grid rows (every department summed), and its
# `area_code` of the per-department rows (every area summed).
ALL_DEPARTMENTS = ALL_AREAS = ""
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

    def figures(self) -> dict[str, Any]:
        return figures_of([getattr(self, name) for name in COUNT_FIELDS])


COUNT_FIELDS = tuple(Counts.__dataclass_fields__)


def figures_of(sums: Sequence[Any] | None) -> dict[str, Any]:
    """The figures (`FIGURES`) from sums in the order of `COUNT_FIELDS` (None: nothing
    happened). Straight from the list: with 921 grids an object per row cost milliseconds."""
    if sums is None:
        return _NOTHING
    received, closed, on_time, returned, extended, redone, visited, satisfied = map(int, sums[:8])
    seconds, handled = float(sums[8]), int(sums[9])
    return {
        "received": received,
        "closed": closed,
        "on_time": on_time,
        "overdue": closed - on_time,
        "on_time_rate": _rate(on_time, closed),
        "returned": returned,
        "extended": extended,
        "redone": redone,
        "visited": visited,
        "satisfied": satisfied,
        "satisfaction_rate": _rate(satisfied, visited),
        "avg_handling_working_hours": round(seconds / handled / 3600, 2) if handled else None,
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


_NOTHING = figures_of([0] * len(COUNT_FIELDS))


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
) -> Iterator[Sequence[Any]]:
    """Sums of rollup rows over local days [first, last] (key, then `COUNT_FIELDS`), by
    department (`key_digits` None) or by the area code of that many digits: whole months from
    the monthly rows, the other days from the daily rows, each time the projection that holds
    the key and the scope (per department over all areas, per department and village, or per
    grid)."""
    months, day_ranges = _months_and_days(first, last)
    parts: list[tuple[Table, list[ColumnElement[bool]]]] = []
    if months:
        parts.append((_MONTHLY, [_MONTHLY.c.month.in_(months)]))
    if day_ranges:
        parts.append((_DAILY, [or_(*(_DAILY.c.day.between(a, b) for a, b in day_ranges))]))
    for table, where in parts:
        department, area = table.c.department_code, table.c.area_code
        key: ColumnElement[Any]
        if key_digits is None:
            key = department
            where.append(department != ALL_DEPARTMENTS)
            if scope.area_code:
                where += [area != ALL_AREAS, area.startswith(scope.area_code)]
            else:
                where.append(area == ALL_AREAS)
        else:
            key = area if key_digits == GRID_DIGITS else func.substr(area, 1, key_digits)
            where.append(department == ALL_DEPARTMENTS)
            if scope.area_code:
                where.append(area.startswith(scope.area_code))
        if key_filter is not None:
            where.append(key == key_filter)
        sums = (func.sum(table.c[name]) for name in COUNT_FIELDS)
        query = select(key, *sums).where(*where).group_by(key)
        yield from session.execute(query).tuples().all()


def rollup_holds(key_digits: int | None, scope: Scope) -> bool:
    """Whether the rollup's projections can answer: per department, it knows areas down to the
    village only (command centres are scoped to a 镇街 or 村居; a finer scope is read live)."""
    return key_digits is not None or len(scope.area_code or "") <= VILLAGE_DIGITS


def _counts(
    session: Session,
    *,
    key_digits: int | None,
    period: Period,
    scope: Scope,
    key_filter: str | None,
    rollup: bool,
) -> dict[str, list[Any]]:
    """The sums (`COUNT_FIELDS`) of the period by key: the days the rollup holds from it, the
    rest (today, days not rolled yet) live from the base tables, added up."""
    no_jit(session)
    sums: dict[str, list[Any]] = {}
    live_first = period.first
    holds = rollup and rollup_holds(key_digits, scope)
    through = rolled_through(session) if holds else None
    if through is not None and through >= period.first:
        rolled_last = min(through, period.last)
        rolled = _rolled_counts(
            session,
            first=period.first,
            last=rolled_last,
            key_digits=key_digits,
            scope=scope,
            key_filter=key_filter,
        )
        _add_up(sums, rolled)
        live_first = rolled_last + timedelta(days=1)
    if live_first <= period.last:
        _add_up(sums, _live_rows(session, key_digits, live_first, period, scope, key_filter))
    return sums


def _add_up(sums: dict[str, list[Any]], rows: Iterable[Sequence[Any]]) -> None:
    """Rows (key, `COUNT_FIELDS`…) added per key as plain lists: a `Counts` object per row
    cost ~5 µs, milliseconds per answer with 921 grids (bench/stats.py)."""
    for key, *values in rows:
        known = sums.get(str(key))
        if known is None:
            sums[str(key)] = values
        else:
            sums[str(key)] = [a + b for a, b in zip(known, values, strict=True)]


def _live_rows(
    session: Session,
    key_digits: int | None,
    first: date,
    period: Period,
    scope: Scope,
    key_filter: str | None,
) -> Iterator[Sequence[Any]]:
    """The counts of local days `first`..`period.last` straight from the base tables."""
    live = Period.of(first, period.last, period.tz)
    history_key: Any
    case_key: Any
    if key_digits is None:
        history_key, case_key = department_of_history(), col(Case.department_code)
    else:
        history_key = case_key = func.substr(col(Case.grid_code), 1, key_digits)
    for query in count_queries(
        history_keys=[history_key],
        case_keys=[case_key],
        start=live.start,
        end=live.end,
        scope=scope,
        key_filter=key_filter,
    ):
        yield from session.execute(query).tuples().all()


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
            department_code=code, department_name=name, **figures_of(counts.get(code))
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
        AreaFigures(area_code=code, area_name=name, level=level, **figures_of(counts.get(code)))
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
