"""What each workflow action does to a case: one effect function per row of the transition
table (`dispatch.actions.TRANSITIONS`), and the targets decided by the case or the params."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from core.errors import (
    CaseNotFound,
    ExtensionLimit,
    IllegalTransition,
    InvalidAmount,
    InvalidMerge,
    ReasonRequired,
    UnknownGrid,
)
from core.security import Actor
from dispatch.cases import require_department, routing_for, visibility
from dispatch.changes import change
from dispatch.clock import CalendarProvider, restart_clock
from dispatch.models import Case, CaseStatus
from dispatch.names import STATUS_LABELS
from dispatch.policy import Policy
from taxonomy.catalogue import Catalogue, TimeUnit

S = CaseStatus
# A case cannot be merged into one in these statuses.
MERGE_REFUSED = frozenset({S.REJECTED, S.MERGED, S.CLOSED})


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
    hours: int | None = None
    satisfaction: str | None = None
    category_code: str | None = None
    # register / recategorize: the item (条) of the subcategory the case is registered as.
    item_code: str | None = None
    # resolve / verify: the actor's uploaded photos (media.service), linked to the case.
    attachment_ids: tuple[str, ...] = ()


@dataclass
class Step:
    """What an effect works with; it changes `case`, fills `data` (the history entry's) and says
    whether the deadlines moved."""

    session: Session
    case: Case
    params: ActionParams
    actor: Actor
    now: datetime
    policy: Policy
    calendars: CalendarProvider
    catalogue: Catalogue
    grid_exists: Callable[[str], bool]
    reason: str | None
    note: str | None
    data: dict[str, Any] = field(default_factory=dict)
    deadlines_moved: bool = False


def no_effect(step: Step) -> None:
    """The status change says it all."""


def register(step: Step) -> None:
    """受理/立案; the dispatcher's word overrides classification, unit and grid."""
    case, params, data = step.case, step.params, step.data
    new_sub = params.subcategory_code and params.subcategory_code != case.subcategory_code
    new_item = params.item_code and params.item_code != case.item_code
    if new_sub or new_item:
        # 立案 as an item (条): its unit in this grid's village or town, urgency and limits.
        routing = routing_for(
            step.catalogue,
            params.subcategory_code or case.subcategory_code,
            item_code=params.item_code,
            grid_code=params.grid_code or case.grid_code,
        )
        if new_sub:
            data["subcategory_from"] = case.subcategory_code
            data["subcategory_code"] = routing.subcategory_code
        if routing.item_code:
            if case.item_code:
                data["item_from"] = case.item_code
            data["item_code"] = routing.item_code
        if routing.department_code != case.department_code:
            data["department_from"] = case.department_code
            data["department_code"] = routing.department_code
        routing.apply_to(case)
    if params.department_code and params.department_code != case.department_code:
        require_department(step.session, params.department_code)
        data.setdefault("department_from", case.department_code)
        data["department_code"] = params.department_code
        case.department_code = params.department_code
    if params.grid_code and params.grid_code != case.grid_code:
        if not step.grid_exists(params.grid_code):
            raise UnknownGrid(grids=params.grid_code)
        data["grid_from"] = case.grid_code
        case.grid_code = params.grid_code
        case.grid_rule = "override"
    case.registered_at = step.now
    step.deadlines_moved = bool(data)


def dispatch(step: Step) -> None:
    """派遣, or 改派 after a return: the clock passes to the new owner."""
    case, params = step.case, step.params
    if params.department_code and params.department_code != case.department_code:
        require_department(step.session, params.department_code)
        step.data["department_from"] = case.department_code
        case.department_code = params.department_code
    step.data["department_code"] = case.department_code
    if case.return_count:
        restart_clock(case, step.now)
    case.dispatched_at = step.now
    step.deadlines_moved = True


def accept(step: Step) -> None:
    step.case.accepted_at = step.now


def return_(step: Step) -> None:
    """退单: the unit says "not ours"; the centre dispatches again."""
    step.data["department_code"] = step.case.department_code
    step.case.return_count += 1


def extend(step: Step) -> None:
    """延期 by a whole number of the case's unit (a fraction would be truncated away)."""
    case, amount = step.case, step.params.amount
    if case.extension_count >= step.policy.max_extensions:
        raise ExtensionLimit(case_no=case.case_no, count=case.extension_count)
    limit = max_extension(case)
    if amount is None or not (amount.is_integer() and 0 < amount <= limit):
        raise InvalidAmount(limit=limit)
    step.data.update(amount=int(amount), unit=case.time_limit_unit)
    case.time_limit_value += int(amount)
    case.extension_count += 1
    step.deadlines_moved = True


def max_extension(case: Case) -> int:
    """The largest extension at once: ten times the case's limit (in its own unit)."""
    return max(case.time_limit_value, 1) * 10


def suspend(step: Step) -> None:
    """挂起: the clock pauses; resume goes back to the status it had."""
    step.case.status_before_suspend = step.case.status
    step.case.suspended_at = step.now


def resume(step: Step) -> None:
    """The time suspended pushes the deadlines back, in the limit's own kind of time."""
    case = step.case
    assert case.suspended_at is not None
    calendar = step.calendars.for_department(case.department_code)
    unit = TimeUnit(case.time_limit_unit)
    paused = max(0.0, calendar.seconds_between(case.suspended_at, step.now, unit))
    case.paused_seconds += paused
    step.data["paused_seconds"] = paused
    case.status_before_suspend = None
    case.suspended_at = None
    step.deadlines_moved = True


def resolve(step: Step) -> None:
    """反馈: the unit reports the result."""
    step.data["note"] = step.note
    step.case.resolved_at = step.now
    step.case.handling_seconds = handling_seconds(step)


def handling_seconds(step: Step) -> float | None:
    """Working seconds (the department's calendar) from the case's dispatch to now: the
    handling time the statistics average (dispatch/stats.py)."""
    case = step.case
    if case.dispatched_at is None:
        return None
    calendar = step.calendars.for_department(case.department_code)
    return max(0.0, calendar.working_seconds_between(case.dispatched_at, step.now))


def verify(step: Step) -> None:
    """核查 on site; a failed check (重办) goes back to the unit and counts against it."""
    case, passed = step.case, bool(step.params.passed)
    step.data["passed"] = passed
    if passed:
        case.verified_at = step.now
    else:
        if step.reason is None:
            raise ReasonRequired(action="verify")
        case.redo_count += 1
        restart_clock(case, step.now)
        case.resolved_at = None
    step.deadlines_moved = True


def close(step: Step) -> None:
    step.case.closed_at = step.now


def reopen(step: Step) -> None:
    """重办 after closure (e.g. the resident is dissatisfied)."""
    case = step.case
    case.redo_count += 1
    restart_clock(case, step.now)
    case.resolved_at = case.verified_at = case.closed_at = None
    step.deadlines_moved = True


def merge(step: Step) -> None:
    """并单: the case lives on in another; the other's history says so."""
    case, into = step.case, step.params.into_case_id
    if into == case.id:
        raise InvalidMerge()
    # Only into a case the centre may see: a 镇街 centre cannot merge into another town's case.
    query = select(Case).where(col(Case.id) == into)
    scope = visibility(step.actor)
    if scope is not None:
        query = query.where(scope)
    target: Case | None = step.session.execute(query.with_for_update()).scalar()
    if target is None:
        raise CaseNotFound(case=str(into))
    if CaseStatus(target.status) in MERGE_REFUSED:
        raise IllegalTransition(
            action="merge",
            status=target.status,
            status_label=STATUS_LABELS[CaseStatus(target.status)],
            allowed=", ".join(sorted(set(CaseStatus) - MERGE_REFUSED)),
        )
    step.data["into_case_no"] = target.case_no
    case.merged_into_id = target.id
    change(
        step.session,
        target,
        policy=step.policy,
        action="merged_from",
        from_status=target.status,
        actor=step.actor,
        now=step.now,
        reason=step.reason,
        data={"case_no": case.case_no},
        event_type=None,  # the event is the merged case's `case.merged`
    )
    target.updated_at = step.now


def supervise(step: Step) -> None:
    """督办: a command centre presses the unit; recorded with the centre's level and area."""
    step.data.update(
        note=step.note,
        level=step.actor.centre_level,
        area_code=step.actor.area_code,
        escalation_level=step.case.escalation_level,
    )


def verify_target(case: Case, params: ActionParams) -> CaseStatus:
    return S.VERIFIED if params.passed else S.DISPATCHED


def resume_target(case: Case, params: ActionParams) -> CaseStatus:
    return CaseStatus(case.status_before_suspend or S.ACCEPTED)
