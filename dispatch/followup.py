"""The rest of the loop as effects of the transition table: 延期 asked by the unit and answered
by the command centre, 回访 after closure (and the reopen it allows), 改类."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.errors import (
    ExtensionLimit,
    ExtensionPending,
    GridgovError,
    InvalidHours,
    NoExtensionRequest,
    ReopenRefused,
    SatisfactionRequired,
    UnknownSubcategory,
)
from core.security import Actor
from dispatch.cases import routing_for
from dispatch.clock import restart_clock
from dispatch.effects import Step
from dispatch.models import Case, CaseStatus
from dispatch.policy import Policy

# The most working hours one request may ask for (a working month).
MAX_REQUEST_HOURS = 176
SATISFACTIONS = ("satisfied", "basically_satisfied", "dissatisfied")
DISSATISFIED = "dissatisfied"


def _limit_reached(case: Case, policy: Policy) -> GridgovError | None:
    if case.extension_count >= policy.max_extensions:
        return ExtensionLimit(case_no=case.case_no, count=case.extension_count)
    return None


def request_extension(step: Step) -> None:
    """延期申请: the unit asks for `hours` more working hours, with a reason; one at a time."""
    case, hours = step.case, step.params.hours
    if case.extension_request_hours is not None:
        raise ExtensionPending(case_no=case.case_no, hours=case.extension_request_hours)
    refusal = _limit_reached(case, step.policy)
    if refusal is not None:
        raise refusal
    if hours is None or not 0 < hours <= MAX_REQUEST_HOURS:
        raise InvalidHours(limit=MAX_REQUEST_HOURS)
    case.extension_request_hours = hours
    step.data["hours"] = hours


def pending_request(case: Case, actor: Actor, now: datetime) -> GridgovError | None:
    """Approving or denying needs a request waiting."""
    if case.extension_request_hours is None:
        return NoExtensionRequest(case_no=case.case_no)
    return None


def approve_extension(step: Step) -> None:
    """The command centre grants the request: the deadline moves by its hours of working time
    (the unit's calendar); it counts against `max_extensions`."""
    case = step.case
    hours = case.extension_request_hours
    assert hours is not None  # the row's check
    refusal = _limit_reached(case, step.policy)
    if refusal is not None:
        raise refusal
    case.extension_request_hours = None
    case.extension_seconds += hours * 3600.0
    case.extension_count += 1
    step.data.update(hours=hours, count=case.extension_count)
    step.deadlines_moved = True


def deny_extension(step: Step) -> None:
    """The command centre refuses the request (with a reason); the deadline stays."""
    step.data["hours"] = step.case.extension_request_hours
    step.case.extension_request_hours = None


def visit(step: Step) -> None:
    """回访: the resident's satisfaction with a closed case; `dissatisfied` opens a window in
    which the centre may reopen it (`reopen_after_visit_days`)."""
    case, satisfaction = step.case, step.params.satisfaction
    if satisfaction not in SATISFACTIONS:
        raise SatisfactionRequired()
    case.visit_satisfaction = satisfaction
    case.visited_at = step.now
    case.reopen_until = (
        step.now + timedelta(days=step.policy.reopen_after_visit_days)
        if satisfaction == DISSATISFIED
        else None
    )
    step.data.update(
        satisfaction=satisfaction,
        note=step.note,
        reopen_until=None if case.reopen_until is None else case.reopen_until.isoformat(),
    )


def may_reopen(case: Case, actor: Actor, now: datetime) -> GridgovError | None:
    """A verified case reopens freely; a closed one only within its dissatisfied visit's window."""
    if case.status != CaseStatus.CLOSED:
        return None
    if case.reopen_until is not None and now <= case.reopen_until:
        return None
    return ReopenRefused(days=_window_days(case))


def _window_days(case: Case) -> int:
    if case.reopen_until is not None and case.visited_at is not None:
        return round((case.reopen_until - case.visited_at).total_seconds() / 86400)
    return 0


def recategorize(step: Step) -> None:
    """改类: the centre corrects category and subcategory; the unit and the limit follow the
    catalogue. A dispatched or accepted case whose unit changes is `dispatched` to the new one
    with its clock restarted (the old unit loses sight of it)."""
    case, params = step.case, step.params
    assert params.subcategory_code is not None  # the row needs it
    routing = routing_for(
        step.catalogue,
        params.subcategory_code,
        item_code=params.item_code,
        grid_code=case.grid_code,
    )
    if params.category_code and params.category_code != routing.category_code:
        raise UnknownSubcategory(subcategory=params.subcategory_code)
    step.data.update(
        category_from=case.category_code,
        subcategory_from=case.subcategory_code,
        department_from=case.department_code,
        category_code=routing.category_code,
        subcategory_code=routing.subcategory_code,
        department_code=routing.department_code,
    )
    if routing.item_code or case.item_code:
        step.data.update(item_from=case.item_code, item_code=routing.item_code)
    moved = routing.department_code != case.department_code
    routing.apply_to(case)
    case.classification_score = None
    if moved and case.dispatched_at is not None:
        # The row's target is None (the status stays) but for this: the new unit must accept.
        restart_clock(case, step.now)
        case.status = CaseStatus.DISPATCHED
        case.extension_request_hours = None
        case.accepted_at = None
        case.dispatched_at = step.now
    step.deadlines_moved = True
