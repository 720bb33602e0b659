"""考核 figures: per department or per area (town, village, grid) over a period of local days,
read from the case table (closures, deadlines, handling time) and the history table (what was
done, when). Every figure is defined in the README ("Statistics")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, func, or_, select, text
from sqlalchemy import case as when
from sqlmodel import Session, col

from dispatch.models import Case, CaseHistory, CaseStatus, Department
from grid.models import Area

# Digits of an area code at each level a statistic is asked for.
LEVEL_DIGITS = {"town": 9, "village": 12, "grid": 15}
# `visit` answers that count as satisfied (满意 and 基本满意).
SATISFIED = ("satisfied", "basically_satisfied")
# History actions an extension granted is recorded as (the old direct one, and an approval).
EXTENSIONS = ("extend", "approve_extension")
_ACTIONS = ("dispatch", "recategorize", "return", "verify", "reopen", "visit", *EXTENSIONS)

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


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class Period:
    """Local days `first` to `last` (both included) as the UTC instants [start, end)."""

    first: date
    last: date
    start: datetime
    end: datetime

    @classmethod
    def of(cls, first: date, last: date, tz: ZoneInfo) -> Period:
        start = datetime.combine(first, time(0), tz)
        end = datetime.combine(last + timedelta(days=1), time(0), tz)
        return cls(first, last, start, end)


@dataclass(frozen=True)
class Scope:
    """Whose cases count: a scoped command centre's area (a code prefix) and, for a department,
    its own row only."""

    area_code: str | None = None
    department_code: str | None = None


def _sum(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(when((condition, 1), else_=0)), 0)


def _collect(
    session: Session,
    *,
    history_key: Any,
    case_key: Any,
    period: Period,
    scope: Scope,
    key_filter: str | None,
) -> dict[str, Counts]:
    """Two grouped queries: history rows in the period, cases closed in the period."""
    if session.get_bind().dialect.name == "postgresql":
        # PostgreSQL's JIT spends ~0.2 s compiling these aggregates before a scan it does not
        # shorten (bench/stats.py); off for this transaction only.
        session.execute(text("SET LOCAL jit = off"))
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
        h_action.in_(_ACTIONS),
        h_at >= period.start,
        h_at < period.end,
    ]
    case_where: list[ColumnElement[bool]] = [
        col(Case.status) == CaseStatus.CLOSED.value,
        col(Case.closed_at) >= period.start,
        col(Case.closed_at) < period.end,
    ]
    if scope.area_code:
        history_where.append(col(Case.grid_code).startswith(scope.area_code))
        case_where.append(col(Case.grid_code).startswith(scope.area_code))
    if key_filter is not None:
        history_where.append(history_key == key_filter)
        case_where.append(case_key == key_filter)
    history = (
        select(
            history_key,
            _sum(or_(h_action == "dispatch", moved)),
            _sum(h_action == "return"),
            _sum(h_action.in_(EXTENSIONS)),
            _sum(
                or_(
                    h_action == "reopen",
                    and_(h_action == "verify", col(CaseHistory.to_status) != "verified"),
                )
            ),
            _sum(h_action == "visit"),
            _sum(and_(h_action == "visit", satisfaction.in_(SATISFIED))),
        )
        .select_from(CaseHistory)
        .join(Case, col(Case.id) == col(CaseHistory.case_id))
        .where(*history_where)
        .group_by(history_key)
    )
    counts: dict[str, Counts] = {}
    for key, received, returned, extended, redone, visited, satisfied in session.execute(
        history
    ).tuples():
        c = counts.setdefault(str(key), Counts())
        c.received, c.returned, c.extended = int(received), int(returned), int(extended)
        c.redone, c.visited, c.satisfied = int(redone), int(visited), int(satisfied)
    handling = col(Case.handling_seconds)
    closed = (
        select(
            case_key,
            func.count(),
            _sum(col(Case.resolved_at) <= col(Case.due_at)),
            func.coalesce(func.sum(handling), 0.0),
            func.count(handling),
        )
        .where(*case_where)
        .group_by(case_key)
    )
    for key, n, on_time, seconds, handled in session.execute(closed).tuples():
        c = counts.setdefault(str(key), Counts())
        c.closed, c.on_time = int(n), int(on_time)
        c.handling_seconds, c.handled = float(seconds), int(handled)
    return counts


def department_figures(
    session: Session, *, period: Period, scope: Scope
) -> list[DepartmentFigures]:
    """One row per department (all of them, or the asking department's own)."""
    # The department a history row concerns: the one it names (dispatch, return, the new one
    # of a recategorize), else the case's own (the department that handles it).
    history_key = func.coalesce(
        col(CaseHistory.data)["department_code"].as_string(), col(Case.department_code)
    )
    counts = _collect(
        session,
        history_key=history_key,
        case_key=col(Case.department_code),
        period=period,
        scope=scope,
        key_filter=scope.department_code,
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
    session: Session, *, level: str, period: Period, scope: Scope
) -> list[AreaFigures]:
    """One row per area of the level (inside, or holding, a scoped command centre's area)."""
    digits = LEVEL_DIGITS[level]
    key = func.substr(col(Case.grid_code), 1, digits)
    counts = _collect(
        session, history_key=key, case_key=key, period=period, scope=scope, key_filter=None
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
