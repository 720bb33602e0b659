"""Cases in and out: intake (`open_case`), who sees what, one case, the filtered list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from shapely.geometry import Point
from sqlalchemy import ColumnElement, and_, func, insert, or_, select, text
from sqlalchemy.orm import class_mapper
from sqlmodel import Session, SQLModel, col

from core.errors import CaseNotFound, UnknownDepartment, UnknownSubcategory
from core.models import Role
from core.security import Actor, Party
from dispatch.changes import EventType, change
from dispatch.clock import CalendarProvider, apply_sla, set_deadlines
from dispatch.history import CASE_TABLE as _CASE
from dispatch.models import Case, CaseStatus, Department
from dispatch.policy import Policy
from taxonomy.catalogue import Catalogue, TimeUnit

_NEXT_ID_PG = text("SELECT nextval(pg_get_serial_sequence('gg_case', 'id'))")
_NEXT_ID_SQLITE = text("SELECT coalesce(max(id), 0) + 1 FROM gg_case")


@dataclass(frozen=True)
class Routing:
    """Where a new case goes: its classification and the responsible unit with its limit."""

    category_code: str
    subcategory_code: str
    classification_score: float | None
    department_code: str
    urgency: str
    time_limit_value: int
    time_limit_unit: TimeUnit


@dataclass(frozen=True)
class NewCase:
    channel: str
    reporter_id: int | None
    description: str
    lng: float
    lat: float
    grid_code: str
    grid_rule: str
    routing: Routing
    occurred_at: datetime | None = None


def routing_for(
    catalogue: Catalogue, subcategory_code: str, *, score: float | None = None
) -> Routing:
    sub = catalogue.subcategory(subcategory_code)
    if sub is None:
        raise UnknownSubcategory(subcategory=subcategory_code)
    return Routing(
        category_code=catalogue.category_of(sub.code).code,
        subcategory_code=sub.code,
        classification_score=score,
        department_code=sub.department_code,
        urgency=str(sub.urgency),
        time_limit_value=sub.time_limit.value,
        time_limit_unit=TimeUnit(sub.time_limit.unit),
    )


def require_department(session: Session, code: str) -> None:
    found = session.execute(
        select(col(Department.id)).where(
            col(Department.code) == code, col(Department.active).is_(True)
        )
    ).first()
    if found is None:
        raise UnknownDepartment(department=code)


T = TypeVar("T", bound=SQLModel)


def unattached(cls: type[T], **values: Any) -> T:
    """A new table object that no session tracks, built as the ORM builds a row it loads: the
    values (and the model's defaults) go straight into the instance, with no attribute event
    per field. `Case(...)` fires one per field (44), a tenth of an intake's CPU; the object is
    inserted with a plain INSERT (`row_values`), so nothing needs the events. Later changes to
    it are ordinary attribute sets."""
    unknown = set(values) - set(cls.model_fields)
    if unknown:
        raise TypeError(f"{cls.__name__}: no fields {sorted(unknown)}")
    obj: T = class_mapper(cls).class_manager.new_instance()
    state = obj.__dict__
    for name, field in cls.model_fields.items():
        if name in values:
            state[name] = values[name]
        elif not field.is_required():
            state[name] = field.get_default(call_default_factory=True)
        else:
            raise TypeError(f"{cls.__name__}: {name} is required")
    return obj


def row_values(obj: Any) -> dict[str, Any]:
    """An unattached table object as the values of its INSERT."""
    return {c.name: getattr(obj, c.key) for c in obj.__table__.columns}


def next_case_id(session: Session) -> int:
    """Allocate the id up front so the case number is written with the row (no second UPDATE).

    PostgreSQL: the serial's sequence. SQLite: writers hold the database lock (BEGIN IMMEDIATE)
    for the whole transaction, so max(id) + 1 cannot be taken twice.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = _NEXT_ID_PG if postgres else _NEXT_ID_SQLITE
    return int(session.connection().execute(statement).scalar_one())


def next_case_id_sql(dialect: str) -> str:
    """`next_case_id` as an SQL expression, for a statement that claims the id in the same round
    trip (intake's report row). The same rules: the serial's sequence, or max(id) + 1 under
    SQLite's write lock."""
    if dialect == "postgresql":
        return "nextval(pg_get_serial_sequence('gg_case', 'id'))"
    return "(SELECT coalesce(max(id), 0) + 1 FROM gg_case)"


def case_no_for(case_id: int, reported_at: datetime, tz: ZoneInfo) -> str:
    """Human case number: local report date + zero-padded id, e.g. 20261123000042."""
    return f"{reported_at.astimezone(tz):%Y%m%d}{case_id:06d}"


def open_case(
    session: Session,
    *,
    new: NewCase,
    actor: Party,
    now: datetime,
    calendars: CalendarProvider,
    policy: Policy,
    case_id: int | None = None,
) -> Case:
    """Create a case (status `reported`) with its clock started now and its first history row.

    `case_id`: one already claimed with `next_case_id_sql`; else one is allocated here."""
    calendar = calendars.for_department(new.routing.department_code)
    r = new.routing
    if case_id is None:
        case_id = next_case_id(session)
    case = unattached(
        Case,
        id=case_id,
        case_no=case_no_for(case_id, now, calendar.tz),
        status=CaseStatus.REPORTED,
        channel=new.channel,
        reporter_id=new.reporter_id,
        description=new.description,
        lat=new.lat,
        lng=new.lng,
        location=Point(new.lng, new.lat),
        grid_code=new.grid_code,
        grid_rule=new.grid_rule,
        category_code=r.category_code,
        subcategory_code=r.subcategory_code,
        classification_score=r.classification_score,
        department_code=r.department_code,
        urgency=r.urgency,
        time_limit_value=r.time_limit_value,
        time_limit_unit=r.time_limit_unit,
        clock_started_at=now,
        occurred_at=new.occurred_at,
        reported_at=now,
        updated_at=now,
    )
    set_deadlines(case, calendar=calendar, policy=policy)
    apply_sla(case, calendar=calendar, policy=policy, now=now, actor=None, session=None)
    change(
        session,
        case,
        policy=policy,
        action="report",
        from_status=None,
        actor=actor,
        now=now,
        event_type=EventType.REPORTED,
        data={
            "channel": new.channel,
            "grid_code": new.grid_code,
            "grid_rule": new.grid_rule,
            "subcategory_code": r.subcategory_code,
            "department_code": r.department_code,
            "due_at": case.due_at.isoformat() if case.due_at else None,
        },
    )
    # A plain INSERT: a new case needs no unit of work (the object is returned, not attached).
    # Its history row is written at commit (`history._link`).
    session.connection().execute(insert(_CASE), [row_values(case)])
    return case


def visibility(actor: Actor) -> ColumnElement[bool] | None:
    """Which cases an actor may see (None: all): role and place."""
    if actor.is_command_centre:
        if actor.area_code:  # a 镇街 or 村居 command centre: the cases inside its area
            return col(Case.grid_code).startswith(actor.area_code, autoescape=True)
        return None
    if actor.role is Role.DEPARTMENT:
        return and_(
            col(Case.department_code) == (actor.department_code or ""),
            col(Case.dispatched_at).is_not(None),
        )
    if actor.role is Role.GRID_WORKER:
        return or_(
            col(Case.grid_code).in_(sorted(actor.grid_codes)),
            col(Case.reporter_id) == actor.id,
        )
    return col(Case.id) == -1


def case_key(case_id: int | str) -> ColumnElement[bool]:
    """A case named by its id (a number) or its `case_no` (a string)."""
    if isinstance(case_id, str):
        return col(Case.case_no) == case_id
    return col(Case.id) == case_id


def get_case(session: Session, *, case_id: int | str, actor: Actor) -> Case:
    """A case the actor may see (the same rule as listing); others' cases are not found."""
    query = select(Case).where(case_key(case_id))
    scope = visibility(actor)
    if scope is not None:
        query = query.where(scope)
    case: Case | None = session.execute(query).scalar()
    if case is None:
        raise CaseNotFound(case=str(case_id))
    return case


class CaseSort(StrEnum):
    REPORTED_AT = "reported_at"
    REPORTED_AT_DESC = "-reported_at"
    DUE_AT = "due_at"
    DUE_AT_DESC = "-due_at"


@dataclass(frozen=True)
class CaseFilter:
    """Filters of a case list; every one given must hold (statuses: any of them)."""

    statuses: tuple[str, ...] = ()
    category_code: str | None = None
    department_code: str | None = None
    area_code: str | None = None  # any level: the grid code starts with it
    channel: str | None = None
    warning_level: str | None = None
    # The caller's escalation queue: cases whose escalation reached its level or above.
    escalated_to_me: bool = False
    text: str | None = None  # in the description or the case_no, ignoring case
    reported_from: datetime | None = None  # inclusive
    reported_until: datetime | None = None  # exclusive
    sort: CaseSort = CaseSort.REPORTED_AT_DESC
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class CasePage:
    items: list[Case]
    total: int


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(actor: Actor, filters: CaseFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    scope = visibility(actor)
    if scope is not None:
        found.append(scope)
    if filters.statuses:
        found.append(col(Case.status).in_(filters.statuses))
    if filters.category_code:
        found.append(col(Case.category_code) == filters.category_code)
    if filters.department_code:
        found.append(col(Case.department_code) == filters.department_code)
    if filters.area_code:
        found.append(col(Case.grid_code).startswith(filters.area_code, autoescape=True))
    if filters.channel:
        found.append(col(Case.channel) == filters.channel)
    if filters.warning_level:
        found.append(col(Case.warning_level) == filters.warning_level)
    if filters.escalated_to_me:
        found.append(col(Case.escalation_level) >= max(actor.centre_level, 1))
    if filters.text:
        pattern = f"%{_like_escaped(filters.text)}%"
        found.append(
            or_(
                col(Case.description).ilike(pattern, escape="\\"),
                col(Case.case_no).ilike(pattern, escape="\\"),
            )
        )
    if filters.reported_from is not None:
        found.append(col(Case.reported_at) >= filters.reported_from)
    if filters.reported_until is not None:
        found.append(col(Case.reported_at) < filters.reported_until)
    return found


def _order(sort: CaseSort) -> list[Any]:
    """The sort key then the id, in the same direction; cases without a deadline come last."""
    descending = sort.startswith("-")
    if sort in (CaseSort.DUE_AT, CaseSort.DUE_AT_DESC):
        keys: list[Any] = [col(Case.due_at).is_(None), col(Case.due_at)]
    else:
        keys = [col(Case.reported_at)]
    ordered = [k.desc() if descending and i == len(keys) - 1 else k for i, k in enumerate(keys)]
    return [*ordered, col(Case.id).desc() if descending else col(Case.id)]


def list_cases(session: Session, *, actor: Actor, filters: CaseFilter) -> CasePage:
    """One page of the cases this actor may see, and how many match in all."""
    conditions = _conditions(actor, filters)
    total = session.execute(select(func.count()).select_from(Case).where(*conditions)).scalar()
    query = (
        select(Case)
        .where(*conditions)
        .order_by(*_order(filters.sort))
        .limit(filters.limit)
        .offset(filters.offset)
    )
    return CasePage(items=list(session.execute(query).scalars()), total=int(total or 0))


# Cases that still need their category: everything but the final states.
FINISHED_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.REJECTED, CaseStatus.MERGED})


def open_cases_by_subcategory(session: Session) -> dict[tuple[str, str], int]:
    """How many unfinished cases carry each (category code, subcategory code)."""
    rows = session.execute(
        select(col(Case.category_code), col(Case.subcategory_code), func.count())
        .where(col(Case.status).not_in([s.value for s in FINISHED_STATUSES]))
        .group_by(col(Case.category_code), col(Case.subcategory_code))
    ).all()
    return {(cat, sub): int(n) for cat, sub, n in rows}
