"""The case's clock: working calendars, deadlines (时限), yellow/red cards and escalation, and
the sweep that brings due cases up to date."""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, inspect, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col

from core import bulk
from core.db import reader
from core.security import Actor
from dispatch import calendar_service, sla, stages
from dispatch.calendar import WorkCalendar, parse_office_hours
from dispatch.changes import CaseEvent, EventType, change, emit
from dispatch.models import Case, CaseDue, CaseStatus, Department, WarningLevel
from dispatch.policy import Policy
from dispatch.workflow import CLOCK_STATUSES
from taxonomy.catalogue import VILLAGE_LEVEL, TimeUnit


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


def set_deadlines(case: Case, *, calendar: WorkCalendar, policy: Policy) -> None:
    """Yellow (`warn_fraction` of the limit) and red (the limit) instants from the clock start,
    pushed back by the time spent suspended (挂起), counted in the limit's own kind of time,
    then by approved extension requests (延期), in working time."""
    unit = TimeUnit(case.time_limit_unit)
    limit = calendar.seconds_for(case.time_limit_value, unit)
    start, paused = case.clock_started_at, case.paused_seconds
    warn_at = calendar.add_seconds(start, limit * policy.warn_fraction + paused, unit)
    due_at = calendar.add_seconds(start, limit + paused, unit)
    if case.extension_seconds:
        warn_at = calendar.add_working_seconds(warn_at, case.extension_seconds)
        due_at = calendar.add_working_seconds(due_at, case.extension_seconds)
    case.warn_at, case.due_at = warn_at, due_at


def apply_sla(
    case: Case,
    *,
    calendar: WorkCalendar,
    policy: Policy,
    now: datetime,
    actor: Actor | None,
    session: Session | None,
) -> list[str]:
    """Bring warning/escalation and the running stage's card up to `now`; record changes when a
    session is given."""
    events: list[str] = []
    escalation_before = case.escalation_level
    limit_next = None
    if CaseStatus(case.status) in CLOCK_STATUSES and case.due_at and case.warn_at:
        limit_next = _apply_limit(case, calendar=calendar, policy=policy, now=now, events=events)
    stage_next = stages.apply_stage(case, now=now, events=events)
    case.next_check_at = min((t for t in (limit_next, stage_next) if t is not None), default=None)
    if session is not None and actor is not None:
        record_sla(
            session,
            case,
            events,
            policy=policy,
            actor=actor,
            now=now,
            escalation_before=escalation_before,
        )
    return events


def _apply_limit(
    case: Case, *, calendar: WorkCalendar, policy: Policy, now: datetime, events: list[str]
) -> datetime | None:
    """The overall limit (处置): yellow, red and the escalation ladder of the case's urgency;
    its next instant. The ladder is read only once the deadline has passed: before it, the next
    instant is the yellow or the red card's whatever the ladder says."""
    assert case.due_at is not None
    assert case.warn_at is not None
    ladder = (
        policy.escalation(case.catalogue_revision).for_urgency(case.urgency)
        if now >= case.due_at
        else ()
    )
    state = sla.evaluate(
        now=now,
        warn_at=case.warn_at,
        due_at=case.due_at,
        amount=case.time_limit_value,
        unit=TimeUnit(case.time_limit_unit),
        calendar=calendar,
        ladder=ladder,
    )
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
        # Reaching the 村居 (level 1) is what a red card means: it rides on the card's entry.
        # A higher level, or one reached later, has its own entry saying from which level.
        if state.escalation_level > VILLAGE_LEVEL or "sla_overdue" not in events:
            events.append("sla_escalated")
        else:
            events.append(sla.ESCALATED_WITH_CARD)
        case.escalation_level = state.escalation_level
    return state.next_check_at


SLA_EVENT_TYPES = {
    "sla_warning": EventType.WARNING,
    "sla_overdue": EventType.OVERDUE,
    "sla_escalated": EventType.ESCALATED,
    "sla_cleared": None,  # a lifted card: recorded, told to nobody
    # A stage's own limit (签收, 核查): the same cards, naming the stage.
    "stage_warning": EventType.WARNING,
    "stage_overdue": EventType.OVERDUE,
}


def escalation_to(case: Case, level: int) -> dict[str, Any]:
    """An escalation of this level for the case: the level and the area it reaches."""
    return {"level": level, "area_code": sla.escalation_area(case.grid_code, level)}


def escalation_of(case: Case) -> dict[str, Any] | None:
    """The level and the area (村居, 镇街 or district code) the case's escalation reached."""
    if not case.escalation_level:
        return None
    return escalation_to(case, case.escalation_level)


def record_sla(
    session: Session,
    case: Case,
    events: list[str],
    *,
    policy: Policy,
    actor: Actor,
    now: datetime,
    escalation_before: int,
) -> None:
    """One entry per SLA change. A red card that escalates to the 村居 (`ESCALATED_WITH_CARD`
    after it: the limit's first rung, or any stage's red card) is told as `case.escalated` after
    `case.overdue`, with the card's data, without an entry of its own; `sla_escalated` says
    from which level it climbed (a sweep that jumps levels tells only the one reached)."""
    data: dict[str, Any] = {}
    for event_name in events:
        if event_name == sla.ESCALATED_WITH_CARD:
            assert case.id is not None
            emit(session, CaseEvent(EventType.ESCALATED, case.id, now, actor, dict(data), case))
            continue
        data = {
            "warning_level": case.warning_level,
            "escalation_level": case.escalation_level,
            "escalation": escalation_of(case),
            "due_at": case.due_at.isoformat() if case.due_at else None,
        }
        if event_name == "sla_escalated":
            data["escalation_from"] = escalation_before
        stage = stages.current_stage(case)
        if event_name.startswith("stage_") and stage is not None and case.stage_due_at:
            data.update(stage=stage.value, stage_due_at=case.stage_due_at.isoformat())
            if event_name == "stage_overdue":  # a stage's red card reaches the 村居 only
                data["escalation"] = escalation_to(case, VILLAGE_LEVEL)
        change(
            session,
            case,
            policy=policy,
            action=event_name,
            from_status=case.status,
            actor=actor,
            now=now,
            data=data,
            event_type=SLA_EVENT_TYPES[event_name],
        )


def restart_clock(case: Case, now: datetime) -> None:
    case.clock_started_at = now
    case.paused_seconds = 0.0
    case.extension_seconds = 0.0  # granted to the previous owner's clock
    case.warning_level = WarningLevel.NONE


SWEEP_COUNTS = (
    "checked",
    "sla_warning",
    "sla_overdue",
    "sla_escalated",
    "stage_warning",
    "stage_overdue",
)


class SweptCase:
    """A due case as the sweep reads it: its row's columns as plain attributes, not an ORM
    object. The rules (`apply_sla`, `record_sla`) only read and set attributes; the sweep writes
    what they changed for the whole batch in one statement, where the unit of work would issue
    one versioned UPDATE per case. A rule that sets any other field is a bug the write refuses."""

    id: int
    version: int
    changed_fields: set[str]

    def __init__(self, row: Mapping[Any, Any]) -> None:
        self.__dict__.update(row)
        self.__dict__["changed_fields"] = set()

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value
        self.changed_fields.add(name)


def sweep(
    session: Session,
    *,
    now: datetime,
    calendars: CalendarProvider,
    policy: Policy,
    actor: Actor,
    batch: int,
) -> dict[str, int]:
    """One batch of due cases (from the `case_due` queue), claimed so that another sweep skips
    them, brought up to `now`; their history rows and events wait for the commit."""
    session.flush()  # the batch is read and written below the unit of work
    rows = session.connection().execute(_DUE, {"now": now, "batch": batch}).mappings().all()
    counts = dict.fromkeys(SWEEP_COUNTS, 0)
    cases = [SweptCase(row) for row in rows]
    calendar_of: dict[str, WorkCalendar] = {}  # one look-up per unit, not per case
    for swept in cases:
        case = cast(Case, swept)  # what the rules read and set of a case, see SweptCase
        counts["checked"] += 1
        calendar = calendar_of.get(case.department_code)
        if calendar is None:
            calendar = calendar_of[case.department_code] = calendars.for_department(
                case.department_code
            )
        # The selection only narrows: re-check the case itself before acting.
        for event_name in apply_sla(
            case, calendar=calendar, policy=policy, now=now, actor=actor, session=session
        ):
            if event_name in counts:  # `sla_cleared` (a clock set back) is recorded, not counted
                counts[event_name] += 1
        case.updated_at = now
    _write_swept(session, cases)
    return counts


_CASE = Case.__table__  # type: ignore[attr-defined]
_QUEUE = CaseDue.__table__  # type: ignore[attr-defined]
# The due cases, oldest instant first, claimed twice without waiting: their queue rows (another
# sweep takes the next ones) and their case rows (one an action holds now is left for the next
# sweep, which then sees what the action set).
_NOW = bindparam("now", type_=_QUEUE.c.next_check_at.type)
_CLAIMED = (
    select(_QUEUE.c.case_id)
    .where(_QUEUE.c.next_check_at <= _NOW)
    .order_by(_QUEUE.c.next_check_at)
    .limit(bindparam("batch"))
    .with_for_update(skip_locked=True)
    .cte("claimed")
)
_DUE = (
    select(_CASE)
    .join(_CLAIMED, _CASE.c.id == _CLAIMED.c.case_id)
    .where(_CASE.c.next_check_at <= _NOW)
    .order_by(_CASE.c.next_check_at, _CASE.c.id)
    .with_for_update(of=_CASE, skip_locked=True)
)
# What a sweep changes on a case (apply_sla, the history chain's head, updated_at).
SWEPT_FIELDS = (
    "warning_level",
    "escalation_level",
    "stage_warning",
    "next_check_at",
    "updated_at",
    "history_seq",
    "history_head",
)
_SWEPT = frozenset(SWEPT_FIELDS)
_KEYS = ("id", "version")
_CASE_MAPPER = inspect(Case)
# Elsewhere than PostgreSQL (SQLite: in process, no round trips): executemany of one UPDATE,
# whose bind names must differ from the column names it sets.
_SWEPT_UPDATE = (
    update(_CASE)
    .where(_CASE.c.id == bindparam("b_id"), _CASE.c.version == bindparam("b_version"))
    .values(
        {name: bindparam(f"b_{name}") for name in SWEPT_FIELDS} | {"version": _CASE.c.version + 1}
    )
)


def _write_swept(session: Session, cases: list[SweptCase]) -> None:
    """The batch's swept fields, with the optimistic lock's check and bump: one statement on
    PostgreSQL. The rows are locked (FOR UPDATE), so a count that differs is a bug; so is a rule
    that changed a field not written here."""
    if not cases:
        return
    stray = set[str]().union(*(c.changed_fields for c in cases)) - _SWEPT
    if stray:
        raise RuntimeError(f"sweep: rules changed fields it does not write: {sorted(stray)}")
    rows = [{name: getattr(case, name) for name in (*_KEYS, *SWEPT_FIELDS)} for case in cases]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        statement = bulk.update_rows(_CASE, _KEYS, SWEPT_FIELDS, "version")
        written = connection.execute(
            statement, bulk.rows_param(rows, (*_KEYS, *SWEPT_FIELDS))
        ).rowcount
    else:
        params = [{f"b_{name}": value for name, value in row.items()} for row in rows]
        written = connection.execute(_SWEPT_UPDATE, params).rowcount
    if written != len(rows):
        raise StaleDataError(f"sweep: {written} of {len(rows)} cases updated")
    for case in cases:
        case.__dict__["version"] = case.version + 1  # what the outbox's snapshot tells
        # An ORM copy of a swept case in this session is now stale: read it again when used.
        loaded = session.identity_map.get(_CASE_MAPPER.identity_key_from_primary_key((case.id,)))
        if loaded is not None:
            session.expire(loaded)
