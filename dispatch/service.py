"""Case rules, database at the edge: open, act, list, sweep. Services flush, never commit."""

from __future__ import annotations

import dataclasses
import threading
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import Point
from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as SASession
from sqlmodel import Session, col

from app.db import reader
from app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.models import Role
from app.security import SYSTEM_ACTOR, Actor
from dispatch import audit, calendar_service, sla
from dispatch.calendar import WorkCalendar, parse_office_hours
from dispatch.models import (
    AuditHead,
    Case,
    CaseHistory,
    CaseStatus,
    Department,
    WarningLevel,
)
from dispatch.workflow import CLOCK_STATUSES, RULES, Action, Party, may_act
from taxonomy.catalogue import Catalogue, TimeUnit


@dataclass(frozen=True)
class Policy:
    """Service-wide SLA and audit settings (from configuration)."""

    audit_key: str
    warn_fraction: float = 0.8
    escalate_every_fraction: float = 0.5
    max_extensions: int = 2


class CalendarProvider:
    """Per-process working calendars; overrides re-read from the database every `ttl` seconds."""

    def __init__(
        self,
        engine: Engine,
        *,
        office_hours: str,
        timezone: str,
        ttl: float = 60.0,
        monotonic: Callable[[], float] = _time.monotonic,
    ) -> None:
        self._engine = engine
        self._default_hours = office_hours
        self._tz = ZoneInfo(timezone)
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._loaded_at = -float("inf")
        self._schedule = calendar_service.Schedule()
        self._calendars: dict[str, WorkCalendar] = {}
        self._department_hours: dict[str, str | None] = {}

    def _refresh(self) -> None:
        if self._monotonic() - self._loaded_at < self._ttl:
            return
        with Session(reader(self._engine)) as session:
            schedule = calendar_service.load_schedule(session)
            hours = (
                session.execute(select(col(Department.code), col(Department.office_hours)))
                .tuples()
                .all()
            )
            self._department_hours = dict(hours)
        self._schedule = schedule
        self._calendars = {}
        self._loaded_at = self._monotonic()

    def get(self, office_hours: str | None = None) -> WorkCalendar:
        spec = office_hours or self._default_hours
        with self._lock:
            self._refresh()
            cal = self._calendars.get(spec)
            if cal is None:
                cal = self._schedule.calendar(parse_office_hours(spec), self._tz)
                self._calendars[spec] = cal
            return cal

    def for_department(self, department_code: str) -> WorkCalendar:
        """The calendar of a unit: its own office hours when it has them."""
        with self._lock:
            self._refresh()
            hours = self._department_hours.get(department_code)
        return self.get(hours)

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = -float("inf")


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
    source: str
    reporter_id: int | None
    description: str
    lng: float
    lat: float
    grid_code: str
    grid_rule: str
    routing: Routing
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class ActionParams:
    reason: str | None = None
    note: str | None = None
    department_code: str | None = None
    grid_code: str | None = None
    subcategory_code: str | None = None
    amount: float | None = None
    passed: bool | None = None
    into_case_id: int | None = None
    expected_version: int | None = None


def routing_for(
    catalogue: Catalogue, subcategory_code: str, *, score: float | None = None
) -> Routing:
    sub = catalogue.subcategory(subcategory_code)
    if sub is None:
        raise ValidationFailed(
            f"unknown subcategory {subcategory_code!r}", code="unknown_subcategory"
        )
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
        raise ValidationFailed(f"unknown department {code!r}", code="unknown_department")


def _record(
    session: Session,
    case: Case,
    *,
    policy: Policy,
    action: str,
    from_status: str | None,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one link to the case's history chain, carrying the case's audited state as it is
    now: call it after every change of an audited field (see `audit.AUDITED_FIELDS`).

    The row is queued on the session and written, linked into the global chain, just before
    the transaction commits (`_link_pending`), so the global head is locked only that long.
    """
    assert case.id is not None
    seq = case.history_seq + 1
    payload = data or {}
    actor_name = actor.display_name or actor.username
    prev_hash = case.history_head or audit.GENESIS
    state_hash = audit.state_digest(case)
    digest = audit.row_digest(
        key=policy.audit_key,
        prev_hash=prev_hash,
        case_id=case.id,
        seq=seq,
        action=action,
        from_status=from_status,
        to_status=case.status,
        actor_id=actor.id,
        actor_role=str(actor.role),
        actor_name=actor_name,
        at=now,
        reason=reason,
        data=payload,
        state_hash=state_hash,
    )
    row = {
        "case_id": case.id,
        "seq": seq,
        "action": action,
        "from_status": from_status,
        "to_status": str(case.status),
        "actor_id": actor.id,
        "actor_role": str(actor.role),
        "actor_name": actor_name,
        "at": now,
        "reason": reason,
        "data": payload,
        "prev_hash": prev_hash,
        "hash": digest,
        "state_hash": state_hash,
    }
    case.history_seq = seq
    case.history_head = digest
    _queue_history(session, row, key=policy.audit_key)


# History rows recorded in a session but not yet written: (open savepoints, key, row).
_PENDING = "gridgov_audit_pending"


def _queue_history(session: Session, row: dict[str, Any], *, key: str) -> None:
    savepoints: list[Any] = []
    tx = session.get_nested_transaction()
    while tx is not None:
        if tx.nested:
            savepoints.append(tx)
        tx = tx.parent
    session.info.setdefault(_PENDING, []).append((tuple(savepoints), key, row))


def _pending_rows(session: Session) -> list[tuple[tuple[Any, ...], str, dict[str, Any]]]:
    pending: list[tuple[tuple[Any, ...], str, dict[str, Any]]] = session.info.get(_PENDING, [])
    return pending


@event.listens_for(SASession, "after_soft_rollback")
def _drop_rolled_back(session: SASession, previous_transaction: Any) -> None:
    """A savepoint rolled back takes its history rows with it; the root takes them all."""
    pending = session.info.get(_PENDING)
    if not pending:
        return
    if previous_transaction.nested:
        pending[:] = [p for p in pending if previous_transaction not in p[0]]
    else:
        pending.clear()


@event.listens_for(SASession, "after_transaction_end")
def _forget_pending(session: SASession, transaction: Any) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_PENDING, None)


@event.listens_for(SASession, "before_commit")
def _link_pending(session: SASession) -> None:
    """Write the queued history rows, linked into the global chain, in one step at commit.

    The `audit_head` row is locked (PostgreSQL; SQLite writers are serialised already) only
    from here to the end of the commit: one SELECT … FOR UPDATE, then the rows and the new head
    (one statement on PostgreSQL).
    """
    if session.in_nested_transaction():
        return  # a savepoint: its rows wait for the real commit
    pending = session.info.get(_PENDING)
    if not pending:
        return
    rows = [row for _, _, row in pending]
    keys = {key for _, key, _ in pending}
    assert len(keys) == 1, "history rows of one transaction signed with different keys"
    key = keys.pop()
    conn = session.connection()
    head = conn.execute(_HEAD_LOCK).first()
    if head is None:
        raise RuntimeError("audit_head row missing: run `gridgov audit verify`")
    gseq, prev, prev_case = int(head.gseq), str(head.hash), head.case_id
    for row in rows:
        gseq += 1
        ghash = audit.link_digest(
            key=key, gprev_hash=prev, gseq=gseq, prev_case_id=prev_case, row_hash=row["hash"]
        )
        row.update(gseq=gseq, gprev_hash=prev, prev_case_id=prev_case, ghash=ghash)
        prev, prev_case = ghash, row["case_id"]
    if conn.dialect.name == "postgresql":
        # One round trip while the head is locked: the head moves in a data-modifying CTE of
        # the history INSERT (PostgreSQL runs it whether or not the INSERT refers to it).
        move = (
            update(_HEAD)
            .where(_HEAD.c.id == 1)
            .values(gseq=gseq, hash=prev, case_id=prev_case)
            .cte("head_move")
        )
        conn.execute(insert(_HISTORY).values(rows).add_cte(move))
    else:
        conn.execute(_HISTORY_INSERT, rows)
        conn.execute(_HEAD_MOVE, {"new_gseq": gseq, "new_hash": prev, "new_case_id": prev_case})
    pending.clear()


def _set_deadlines(case: Case, *, calendar: WorkCalendar, policy: Policy) -> None:
    """Deadlines from the clock start, the limit and the time spent suspended (挂起)."""
    d = sla.deadlines(
        start=case.clock_started_at,
        amount=case.time_limit_value,
        unit=TimeUnit(case.time_limit_unit),
        calendar=calendar,
        warn_fraction=policy.warn_fraction,
        paused_seconds=case.paused_seconds,
    )
    case.warn_at, case.due_at = d.warn_at, d.due_at


def _apply_sla(
    case: Case,
    *,
    calendar: WorkCalendar,
    policy: Policy,
    now: datetime,
    actor: Actor | None,
    session: Session | None,
) -> list[str]:
    """Bring warning/escalation up to `now`; record changes when a session is given."""
    if CaseStatus(case.status) not in CLOCK_STATUSES or case.due_at is None or case.warn_at is None:
        case.next_check_at = None
        return []
    state = sla.evaluate(
        now=now,
        warn_at=case.warn_at,
        due_at=case.due_at,
        amount=case.time_limit_value,
        unit=TimeUnit(case.time_limit_unit),
        calendar=calendar,
        escalate_every_fraction=policy.escalate_every_fraction,
    )
    events: list[str] = []
    old_level = WarningLevel(case.warning_level)
    if state.warning_level != old_level:
        if state.warning_level is WarningLevel.YELLOW and old_level is WarningLevel.NONE:
            events.append("sla_warning")
        elif state.warning_level is WarningLevel.RED:
            events.append("sla_overdue")
        else:  # lower: a later deadline (extension, resume) or a clock set back
            events.append("sla_cleared")
        case.warning_level = state.warning_level
    if state.escalation_level > case.escalation_level:
        if state.escalation_level > 1 or "sla_overdue" not in events:
            events.append("sla_escalated")
        case.escalation_level = state.escalation_level
    case.next_check_at = state.next_check_at
    if session is not None and actor is not None:
        _record_sla(session, case, events, policy=policy, actor=actor, now=now)
    return events


def _record_sla(
    session: Session,
    case: Case,
    events: list[str],
    *,
    policy: Policy,
    actor: Actor,
    now: datetime,
) -> None:
    for event_name in events:
        _record(
            session,
            case,
            policy=policy,
            action=event_name,
            from_status=case.status,
            actor=actor,
            now=now,
            data={
                "warning_level": case.warning_level,
                "escalation_level": case.escalation_level,
                "escalated_to": sla.ESCALATION_TARGETS.get(case.escalation_level),
                "due_at": case.due_at.isoformat() if case.due_at else None,
            },
        )


_CASE = Case.__table__  # type: ignore[attr-defined]
_HISTORY = CaseHistory.__table__  # type: ignore[attr-defined]
_HEAD = AuditHead.__table__  # type: ignore[attr-defined]
# Built once: `_link_pending` runs in every writing transaction.
_HEAD_LOCK = (
    select(_HEAD.c.gseq, _HEAD.c.hash, _HEAD.c.case_id).where(_HEAD.c.id == 1).with_for_update()
)
_HEAD_MOVE = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(
        gseq=bindparam("new_gseq"), hash=bindparam("new_hash"), case_id=bindparam("new_case_id")
    )
)
_HISTORY_INSERT = insert(_HISTORY)
_NEXT_ID_PG = text("SELECT nextval(pg_get_serial_sequence('gg_case', 'id'))")
_NEXT_ID_SQLITE = text("SELECT coalesce(max(id), 0) + 1 FROM gg_case")


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


def case_no_for(case_id: int, reported_at: datetime, tz: ZoneInfo) -> str:
    """Human case number: local report date + zero-padded id, e.g. 20261123000042."""
    return f"{reported_at.astimezone(tz):%Y%m%d}{case_id:06d}"


def open_case(
    session: Session,
    *,
    new: NewCase,
    actor: Actor,
    now: datetime,
    calendars: CalendarProvider,
    policy: Policy,
) -> Case:
    """Create a case (status `reported`) with its clock started now and its first history row."""
    calendar = calendars.for_department(new.routing.department_code)
    r = new.routing
    case_id = next_case_id(session)
    case = Case(
        id=case_id,
        case_no=case_no_for(case_id, now, calendar.tz),
        status=CaseStatus.REPORTED,
        source=new.source,
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
    _set_deadlines(case, calendar=calendar, policy=policy)
    _apply_sla(case, calendar=calendar, policy=policy, now=now, actor=None, session=None)
    _record(
        session,
        case,
        policy=policy,
        action="report",
        from_status=None,
        actor=actor,
        now=now,
        data={
            "source": new.source,
            "grid_code": new.grid_code,
            "grid_rule": new.grid_rule,
            "subcategory_code": r.subcategory_code,
            "department_code": r.department_code,
            "due_at": case.due_at.isoformat() if case.due_at else None,
        },
    )
    # A plain INSERT: a new case needs no unit of work (the object is returned, not attached).
    # Its history row is written at commit (`_link_pending`).
    session.connection().execute(insert(_CASE), [row_values(case)])
    return case


def visibility(actor: Actor) -> ColumnElement[bool] | None:
    """Which cases an actor may see (None: all): role and place."""
    if actor.is_command_centre:
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
        raise NotFound(f"case {case_id} not found", code="case_not_found")
    return case


def history(session: Session, case_id: int) -> list[CaseHistory]:
    """A case's history, with the rows this transaction recorded but writes only at commit."""
    rows = list(
        session.execute(
            select(CaseHistory)
            .where(col(CaseHistory.case_id) == case_id)
            .order_by(col(CaseHistory.seq))
        ).scalars()
    )
    pending = _pending_rows(session)
    rows += [CaseHistory(**row) for _, _, row in pending if row["case_id"] == case_id]
    return rows


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
    source: str | None = None
    warning_level: str | None = None
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
    if filters.source:
        found.append(col(Case.source) == filters.source)
    if filters.warning_level:
        found.append(col(Case.warning_level) == filters.warning_level)
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


def act(
    session: Session,
    *,
    case_id: int | str,
    action: Action,
    params: ActionParams,
    actor: Actor,
    now: datetime,
    calendars: CalendarProvider,
    policy: Policy,
    catalogue: Catalogue,
    grid_exists: Callable[[str], bool],
) -> Case:
    """Apply one workflow action under a row lock, with every guard, and record it.

    Acting on a case of another grid or unit is 403 (not 404): the actor is told plainly.
    """
    case: Case | None = session.execute(
        select(Case).where(case_key(case_id)).with_for_update()
    ).scalar()
    if case is None:
        raise NotFound(f"case {case_id} not found", code="case_not_found")
    rule = RULES[action]
    if not may_act(
        rule.party,
        role=actor.role,
        actor_department=actor.department_code,
        actor_grids=actor.grid_codes,
        case_department=case.department_code,
        case_grid=case.grid_code,
    ):
        raise Forbidden(_who_may(rule.party, action), code="not_permitted")
    if params.expected_version is not None and params.expected_version != case.version:
        raise Conflict(
            f"case {case.case_no} changed meanwhile (version {case.version}); reload and retry",
            code="stale_case",
        )
    status = CaseStatus(case.status)
    if status not in rule.sources:
        raise Conflict(
            f"cannot {action} a case that is {status}; allowed from: "
            + ", ".join(sorted(rule.sources)),
            code="illegal_transition",
        )
    reason = (params.reason or "").strip() or None
    note = (params.note or "").strip() or None
    if rule.reason_required and reason is None:
        raise ValidationFailed(f"{action} needs a reason", code="reason_required")
    if rule.note_required and note is None:
        raise ValidationFailed(f"{action} needs a note on the result", code="note_required")

    data: dict[str, Any] = {}
    calendar = calendars.for_department(case.department_code)

    if action is Action.REGISTER:
        _override_routing(session, case, params, catalogue, grid_exists, data)
        case.status = CaseStatus.REGISTERED
        case.registered_at = now
    elif action is Action.REJECT:
        case.status = CaseStatus.REJECTED
    elif action is Action.DISPATCH:
        if params.department_code and params.department_code != case.department_code:
            require_department(session, params.department_code)
            data["department_from"] = case.department_code
            case.department_code = params.department_code
            calendar = calendars.for_department(case.department_code)
        data["department_code"] = case.department_code
        if case.return_count:  # 改派: the clock passes to the new owner
            _restart_clock(case, now)
        case.status = CaseStatus.DISPATCHED
        case.dispatched_at = now
    elif action is Action.ACCEPT:
        case.status = CaseStatus.ACCEPTED
        case.accepted_at = now
    elif action is Action.RETURN:
        data["department_code"] = case.department_code
        case.return_count += 1
        case.status = CaseStatus.REGISTERED
    elif action is Action.EXTEND:
        if case.extension_count >= policy.max_extensions:
            raise Conflict(
                f"case {case.case_no} was already extended {case.extension_count} times",
                code="extension_limit",
            )
        amount = params.amount
        # A whole number of units: a fraction would be truncated away (0.4 hours adds nothing).
        limit = max(case.time_limit_value, 1) * 10
        if amount is None or not (amount.is_integer() and 0 < amount <= limit):
            raise ValidationFailed(
                f"extend needs a whole number from 1 to {limit} of the case's time-limit unit",
                code="invalid_amount",
            )
        data.update(amount=int(amount), unit=case.time_limit_unit)
        case.time_limit_value += int(amount)
        case.extension_count += 1
    elif action is Action.SUSPEND:
        case.status_before_suspend = case.status
        case.status = CaseStatus.SUSPENDED
        case.suspended_at = now
    elif action is Action.RESUME:
        assert case.suspended_at is not None
        unit = TimeUnit(case.time_limit_unit)
        paused = max(0.0, calendar.seconds_between(case.suspended_at, now, unit))
        case.paused_seconds += paused
        data["paused_seconds"] = paused
        case.status = case.status_before_suspend or CaseStatus.ACCEPTED
        case.status_before_suspend = None
        case.suspended_at = None
    elif action is Action.RESOLVE:
        data["note"] = note
        case.status = CaseStatus.RESOLVED
        case.resolved_at = now
    elif action is Action.VERIFY:
        if params.passed is None:
            raise ValidationFailed(
                "verify needs passed: true (the work is done) or false (重办)",
                code="passed_required",
            )
        passed = params.passed
        data["passed"] = passed
        if passed:
            case.status = CaseStatus.VERIFIED
            case.verified_at = now
        else:  # 重办: back to the unit, counts against it
            if reason is None:
                raise ValidationFailed("a failed check needs a reason", code="reason_required")
            case.redo_count += 1
            _restart_clock(case, now)
            case.status = CaseStatus.DISPATCHED
            case.resolved_at = None
    elif action is Action.CLOSE:
        case.status = CaseStatus.CLOSED
        case.closed_at = now
    elif action is Action.REOPEN:
        case.redo_count += 1
        _restart_clock(case, now)
        case.status = CaseStatus.DISPATCHED
        case.resolved_at = case.verified_at = case.closed_at = None
    elif action is Action.MERGE:
        target = _merge_target(session, case, params)
        data["into_case_no"] = target.case_no
        case.status = CaseStatus.MERGED
        case.merged_into_id = target.id
        _record(
            session,
            target,
            policy=policy,
            action="merged_from",
            from_status=target.status,
            actor=actor,
            now=now,
            reason=reason,
            data={"case_no": case.case_no},
        )
        target.updated_at = now

    if action in (Action.EXTEND, Action.RESUME, Action.DISPATCH, Action.REOPEN, Action.VERIFY) or (
        action is Action.REGISTER and data
    ):
        _set_deadlines(case, calendar=calendar, policy=policy)
    if note and action is not Action.RESOLVE:
        data["note"] = note
    case.updated_at = now
    # The consequences on the clock are worked out before the action's entry, so that it (and
    # every entry after it) carries the case's final state; they are logged after it, by the
    # system. A lifted card (`sla_cleared`) needs no entry of its own: the action explains it.
    sla_events = _apply_sla(
        case, calendar=calendar, policy=policy, now=now, actor=None, session=None
    )
    _record(
        session,
        case,
        policy=policy,
        action=str(action),
        from_status=status,
        actor=actor,
        now=now,
        reason=reason,
        data=data,
    )
    _record_sla(
        session,
        case,
        [e for e in sla_events if e != "sla_cleared"],
        policy=policy,
        actor=SYSTEM_ACTOR,
        now=now,
    )
    session.flush()
    return case


def _restart_clock(case: Case, now: datetime) -> None:
    case.clock_started_at = now
    case.paused_seconds = 0.0
    case.warning_level = WarningLevel.NONE


def _override_routing(
    session: Session,
    case: Case,
    params: ActionParams,
    catalogue: Catalogue,
    grid_exists: Callable[[str], bool],
    data: dict[str, Any],
) -> None:
    """The dispatcher's word overrides classification, unit and grid at registration."""
    if params.subcategory_code and params.subcategory_code != case.subcategory_code:
        routing = routing_for(catalogue, params.subcategory_code)
        data["subcategory_from"] = case.subcategory_code
        case.category_code = routing.category_code
        case.subcategory_code = routing.subcategory_code
        case.department_code = routing.department_code
        case.urgency = routing.urgency
        case.time_limit_value = routing.time_limit_value
        case.time_limit_unit = routing.time_limit_unit
        data["subcategory_code"] = routing.subcategory_code
    if params.department_code and params.department_code != case.department_code:
        require_department(session, params.department_code)
        data["department_from"] = case.department_code
        case.department_code = params.department_code
    if params.grid_code and params.grid_code != case.grid_code:
        if not grid_exists(params.grid_code):
            raise ValidationFailed(f"unknown grid {params.grid_code!r}", code="unknown_grid")
        data["grid_from"] = case.grid_code
        case.grid_code = params.grid_code
        case.grid_rule = "override"


def _merge_target(session: Session, case: Case, params: ActionParams) -> Case:
    if params.into_case_id is None:
        raise ValidationFailed("merge needs into_case_id", code="invalid_merge")
    if params.into_case_id == case.id:
        raise ValidationFailed("a case cannot be merged into itself", code="invalid_merge")
    target: Case | None = session.execute(
        select(Case).where(col(Case.id) == params.into_case_id).with_for_update()
    ).scalar()
    if target is None:
        raise NotFound(f"case {params.into_case_id} not found", code="case_not_found")
    if CaseStatus(target.status) in (CaseStatus.REJECTED, CaseStatus.MERGED, CaseStatus.CLOSED):
        raise Conflict(
            f"cannot merge into a case that is {target.status}", code="illegal_transition"
        )
    return target


def _who_may(party: Party, action: Action) -> str:
    if party is Party.COMMAND_CENTRE:
        return f"only the command centre (dispatcher) may {action} a case"
    if party is Party.DEPARTMENT:
        return f"only the department the case is dispatched to may {action} it"
    return f"only the grid worker of the case's grid may {action} it"


def sweep(
    session: Session,
    *,
    now: datetime,
    calendars: CalendarProvider,
    policy: Policy,
    actor: Actor,
    batch: int,
) -> dict[str, int]:
    """One batch of due cases (by the indexed next_check_at); claimed rows are skipped by others."""
    due = (
        select(Case)
        .where(col(Case.next_check_at) <= now)
        .order_by(col(Case.next_check_at))
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    counts = {"checked": 0, "sla_warning": 0, "sla_overdue": 0, "sla_escalated": 0}
    for case in session.execute(due).scalars():
        counts["checked"] += 1
        calendar = calendars.for_department(case.department_code)
        # The selection only narrows: re-check the case itself before acting.
        for event_name in _apply_sla(
            case, calendar=calendar, policy=policy, now=now, actor=actor, session=session
        ):
            if event_name in counts:  # `sla_cleared` (a clock set back) is recorded, not counted
                counts[event_name] += 1
        case.updated_at = now
    session.flush()
    return counts


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


_VERIFY_CASES = 500
_VERIFY_LINKS = 5000
_LINK_COLUMNS = ("case_id", "seq", "gseq", "gprev_hash", "prev_case_id", "hash", "ghash")


def audit_reader(engine: Engine) -> Engine:
    """For `verify_audit`/`audit_checkpoint`: read-only, one snapshot for the whole check
    (REPEATABLE READ on PostgreSQL; a SQLite read transaction is one snapshot already)."""
    engine = reader(engine)
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    return engine


def verify_audit(
    session: Session, *, key: str, checkpoint: tuple[int, str] | None = None
) -> tuple[list[audit.ChainProblem], int]:
    """Check the whole log; returns (problems, number of cases). Memory stays flat.

    Per case (in chunks of cases): its chain, its head and count, the live case row against
    the state its last row recorded, rows left by a removed case. Then the global chain in
    `gseq` order from the legacy anchor, the head row, and `checkpoint` (gseq, hash) if given.
    Use a session of `audit_reader(engine)` so that concurrent writers cannot cause false alarms.
    """
    conn = session.connection()
    problems: list[audit.ChainProblem] = []
    anchor = audit.LegacyAnchor()
    case_columns = [_CASE.c[name] for name in ("id", "history_head", "history_seq")]
    case_columns += [_CASE.c[name] for name in audit.AUDITED_FIELDS]
    cases = 0
    lo = 0
    while True:
        chunk = conn.execute(
            select(*case_columns).where(_CASE.c.id > lo).order_by(_CASE.c.id).limit(_VERIFY_CASES)
        ).all()
        last_chunk = len(chunk) < _VERIFY_CASES
        query = select(_HISTORY).where(_HISTORY.c.case_id > lo)
        if not last_chunk:
            query = query.where(_HISTORY.c.case_id <= chunk[-1].id)
        by_case: dict[int, list[Any]] = {}
        for row in conn.execute(query.order_by(_HISTORY.c.case_id, _HISTORY.c.seq)):
            by_case.setdefault(row.case_id, []).append(row)
        live = {c.id: c for c in chunk}
        cases += len(live)
        for case_id in sorted(live.keys() | by_case.keys()):
            rows = by_case.get(case_id, [])
            problems.extend(_verify_case(key, case_id, live.get(case_id), rows))
            legacy = [r for r in rows if r.gseq is None and r.state_hash is None]
            if legacy:
                anchor.add(case_id, len(legacy), legacy[-1].hash)
        if last_chunk:
            break
        lo = chunk[-1].id

    checker = audit.LinkChecker(key=key, anchor=anchor.digest(), checkpoint=checkpoint)
    after = 0
    while True:
        links = conn.execute(
            select(*[_HISTORY.c[name] for name in _LINK_COLUMNS])
            .where(_HISTORY.c.gseq > after)
            .order_by(_HISTORY.c.gseq)
            .limit(_VERIFY_LINKS)
        ).all()
        for link in links:
            checker.feed(link)
        if len(links) < _VERIFY_LINKS:
            break
        after = links[-1].gseq
    head = conn.execute(
        select(_HEAD.c.gseq, _HEAD.c.hash, _HEAD.c.case_id).where(_HEAD.c.id == 1)
    ).first()
    problems.extend(
        checker.finish(
            None if head is None else audit.LogHead(int(head.gseq), head.hash, head.case_id)
        )
    )
    return _with_case_numbers(conn, problems), cases


def _verify_case(
    key: str, case_id: int, case: Any | None, rows: list[Any]
) -> list[audit.ChainProblem]:
    if case is None:
        return [
            audit.ChainProblem(
                case_id, None, f"the case row was removed; {len(rows)} history rows remain"
            )
        ]
    problems = audit.verify_chain(
        key=key,
        case_id=case_id,
        head=case.history_head,
        count=case.history_seq,
        rows=rows,
        state=audit.state_digest(case),
    )
    if not rows:
        problems.append(
            audit.ChainProblem(case_id, None, "the case has no history (every case has a report)")
        )
    for row in rows:
        if row.gseq is None and row.state_hash is not None:
            problems.append(
                audit.ChainProblem(case_id, row.seq, "the row is not linked into the global log")
            )
    return problems


def _with_case_numbers(conn: Any, problems: list[audit.ChainProblem]) -> list[audit.ChainProblem]:
    ids = sorted({p.case_id for p in problems if p.case_id is not None})
    numbers: dict[int, str] = {}
    for i in range(0, len(ids), _VERIFY_CASES):
        numbers.update(
            conn.execute(
                select(_CASE.c.id, _CASE.c.case_no).where(
                    _CASE.c.id.in_(ids[i : i + _VERIFY_CASES])
                )
            )
            .tuples()
            .all()
        )
    return [
        dataclasses.replace(p, case_no=numbers.get(p.case_id)) if p.case_id is not None else p
        for p in problems
    ]


def audit_checkpoint(session: Session, *, key: str) -> str:
    """The signed head of the log (`GSEQ:HASH:MAC`), once the head row matches the last row."""
    conn = session.connection()
    head = conn.execute(select(_HEAD.c.gseq, _HEAD.c.hash).where(_HEAD.c.id == 1)).first()
    if head is None:
        raise Conflict("the audit_head row is missing", code="audit_broken")
    gseq = int(head.gseq)
    last = conn.execute(select(func.max(_HISTORY.c.gseq))).scalar()
    if gseq != int(last or 0):
        raise Conflict(
            f"the audit head (gseq {gseq}) is not the last row of the log (gseq {last or 0}); "
            "run `gridgov audit verify`",
            code="audit_broken",
        )
    if gseq:
        ghash = conn.execute(select(_HISTORY.c.ghash).where(_HISTORY.c.gseq == gseq)).scalar()
        if ghash != head.hash:
            raise Conflict(
                f"the audit head differs from the log's row gseq {gseq}; "
                "run `gridgov audit verify`",
                code="audit_broken",
            )
    return audit.checkpoint_token(key=key, gseq=gseq, ghash=head.hash)
