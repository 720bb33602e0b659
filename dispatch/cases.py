"""Cases in and out: intake (`open_case`), who sees what, one case, the filtered list."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic.fields import FieldInfo
from shapely.geometry import Point
from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.orm import class_mapper
from sqlmodel import Session, SQLModel, col

from core.db import SRID
from core.errors import CaseNotFound, UnknownDepartment, UnknownItem, UnknownSubcategory
from core.models import Role
from core.security import Actor, Party
from dispatch.changes import EventType, change
from dispatch.clock import CalendarProvider, apply_sla, set_deadlines
from dispatch.models import OPEN_LOOP_STATUSES, Case, CaseCard, CaseStatus, Department, WarningLevel
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
    catalogue_revision: int = 0
    item_code: str | None = None
    accept_hours: float | None = None
    verify_hours: float | None = None
    classification_uncertain: bool | None = None

    def apply_to(self, case: Case) -> None:
        """Give the case this classification, unit, urgency and limits (register, 改类)."""
        case.category_code = self.category_code
        case.subcategory_code = self.subcategory_code
        case.department_code = self.department_code
        case.urgency = self.urgency
        case.time_limit_value = self.time_limit_value
        case.time_limit_unit = self.time_limit_unit
        case.catalogue_revision = self.catalogue_revision
        case.item_code = self.item_code
        case.accept_hours = self.accept_hours
        case.verify_hours = self.verify_hours


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
    catalogue: Catalogue,
    subcategory_code: str,
    *,
    score: float | None = None,
    uncertain: bool | None = None,
    item_code: str | None = None,
    grid_code: str = "",
) -> Routing:
    """Where a case of this subcategory (and item, 条) goes in this grid: the item's unit for
    the grid's village or town, else the item's, else the subcategory's; the item's urgency and
    limits where it sets them."""
    sub = catalogue.subcategory(subcategory_code)
    if sub is None:
        raise UnknownSubcategory(subcategory=subcategory_code)
    item = None
    if item_code is not None:
        item = sub.item(item_code)
        if item is None:
            raise UnknownItem(item=item_code, subcategory=sub.code)
    limit = (item.time_limit if item else None) or sub.time_limit
    return Routing(
        category_code=catalogue.category_of(sub.code).code,
        subcategory_code=sub.code,
        classification_score=score,
        department_code=(item.department_in(grid_code) if item else None) or sub.department_code,
        urgency=str((item.urgency if item else None) or sub.urgency),
        time_limit_value=limit.value,
        time_limit_unit=TimeUnit(limit.unit),
        catalogue_revision=catalogue.revision,
        item_code=item.code if item else None,
        accept_hours=item.accept_hours if item else None,
        verify_hours=item.verify_hours if item else None,
        classification_uncertain=uncertain,
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
    names, required, optional = _fields_of(cls)
    unknown = values.keys() - names
    if unknown:
        raise TypeError(f"{cls.__name__}: no fields {sorted(unknown)}")
    for name in required:
        if name not in values:
            raise TypeError(f"{cls.__name__}: {name} is required")
    obj: T = class_mapper(cls).class_manager.new_instance()
    state = obj.__dict__
    state.update(values)
    for name, field in optional:
        if name not in values:
            state[name] = field.get_default(call_default_factory=True)
    return obj


@cache
def _fields_of(
    cls: type[SQLModel],
) -> tuple[frozenset[str], tuple[str, ...], tuple[tuple[str, FieldInfo], ...]]:
    """A model's field names, its required fields and its fields with a default (once)."""
    fields = cls.model_fields
    required = tuple(name for name, field in fields.items() if field.is_required())
    optional = tuple((n, f) for n, f in fields.items() if not f.is_required())
    return frozenset(fields), required, optional


def row_values(obj: Any) -> dict[str, Any]:
    """An unattached table object as the values of its INSERT.

    Read from the instance's dict (where `unattached` and attribute sets put the values)
    rather than through the instrumented attributes, one Python call per column less."""
    state = obj.__dict__
    return {
        name: state[key] if key in state else getattr(obj, key)
        for name, key in _columns_of(obj.__table__)
    }


@cache
def _columns_of(table: Table) -> tuple[tuple[str, str], ...]:
    return tuple((c.name, c.key) for c in table.columns)


def insert_unattached(
    connection: Connection, obj: Any, *, point: tuple[str, str, str] | None = None
) -> None:
    """INSERT an unattached table object, leaving out the columns it leaves NULL.

    A new case has some 55 columns, about 20 of them NULL: psycopg parses a statement with
    more than 50 parameters anew on every execution (it caches only smaller ones), which cost
    more than the rest of the INSERT on the client. A left-out column is NULL all the same:
    only nullable columns without a default (Python or server side) are left out. The
    statement of each set of columns is built once.

    `point` (geometry column, longitude column, latitude column), PostgreSQL only: the point
    is made by the server from the two numbers the row carries anyway, instead of encoding the
    shapely point as EWKB in Python (a fifth of the INSERT's client time). Only for an object
    whose point was made from those same two numbers."""
    table: Table = obj.__table__
    left_out = _nullable_without_default(table)
    values = {
        name: value
        for name, value in row_values(obj).items()
        if value is not None or name not in left_out
    }
    if point is not None and connection.dialect.name == "postgresql":
        del values[point[0]]
        connection.execute(_insert_of(table, tuple(values), point), values)
        return
    connection.execute(_insert_of(table, tuple(values)), values)


@cache
def _nullable_without_default(table: Table) -> frozenset[str]:
    return frozenset(
        c.name
        for c in table.columns
        if c.nullable and c.default is None and c.server_default is None and not c.primary_key
    )


@cache
def _insert_of(
    table: Table, columns: tuple[str, ...], point: tuple[str, str, str] | None = None
) -> Insert:
    values: dict[str, Any] = {c: bindparam(c, type_=table.c[c].type) for c in columns}
    if point is not None:
        geometry, lng, lat = point
        values[geometry] = func.ST_SetSRID(func.ST_MakePoint(values[lng], values[lat]), SRID)
    return insert(table).values(values)


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
        classification_uncertain=r.classification_uncertain,
        catalogue_revision=r.catalogue_revision,
        item_code=r.item_code,
        accept_hours=r.accept_hours,
        verify_hours=r.verify_hours,
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
    # The location is the point of the case's own lng/lat (made above from the same numbers).
    insert_unattached(session.connection(), case, point=("location", "lng", "lat"))
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


def _order(sort: CaseSort, *, by_card: bool = False) -> list[Any]:
    """The sort key then the id, in the same direction; cases without a deadline come last.
    `by_card`: the deadline and id as the card table holds them (the same values)."""
    descending = sort.startswith("-")
    ident = col(CaseCard.case_id) if by_card else col(Case.id)
    if sort in (CaseSort.DUE_AT, CaseSort.DUE_AT_DESC):
        # NULLS LAST rather than a sort on `due_at IS NULL`: an index on the deadline (e.g.
        # `ix_gg_case_department_due`) then gives the first page without sorting every match.
        due = col(CaseCard.due_at) if by_card else col(Case.due_at)
        key: Any = (due.desc() if descending else due.asc()).nulls_last()
    else:
        key = col(Case.reported_at).desc() if descending else col(Case.reported_at)
    return [key, ident.desc() if descending else ident]


def _card_asked(filters: CaseFilter) -> str | None:
    """The card a list asks for when the card table answers it: yellow or red, among statuses
    of the loop only (the SLA board's lists). The table holds exactly those cases (see
    CaseCard), so reading it first spares reading every case of the statuses."""
    level = filters.warning_level
    if level in (WarningLevel.YELLOW, WarningLevel.RED) and filters.statuses:
        if set(filters.statuses) <= set(OPEN_LOOP_STATUSES):
            return level
    return None


def list_cases(session: Session, *, actor: Actor, filters: CaseFilter) -> CasePage:
    """One page of the cases this actor may see, and how many match in all."""
    level = _card_asked(filters)
    if level is not None:
        return _list_carded(session, actor=actor, filters=filters, level=level)
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


def _list_carded(session: Session, *, actor: Actor, filters: CaseFilter, level: str) -> CasePage:
    """`list_cases` for one card among open statuses: the card and the statuses are asked of
    the card table, the other filters of the cases joined to it (none: the count is the card
    table's alone)."""
    carded: list[ColumnElement[bool]] = [col(CaseCard.warning_level) == level]
    if set(filters.statuses) != set(OPEN_LOOP_STATUSES):
        carded.append(col(CaseCard.status).in_(filters.statuses))
    others = _conditions(actor, replace(filters, statuses=(), warning_level=None))
    joined = col(Case.id) == col(CaseCard.case_id)
    count = select(func.count()).select_from(CaseCard).where(*carded)
    if others:
        count = count.join(Case, joined).where(*others)
    total = session.execute(count).scalar()
    query = (
        select(Case)
        .join(CaseCard, joined)
        .where(*carded, *others)
        .order_by(*_order(filters.sort, by_card=True))
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
