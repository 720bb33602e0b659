"""Per-stage limits inside the case's overall limit (处置, from the catalogue): 签收 (the unit
accepts a dispatched case) and 核查 (the grid worker checks a resolved one), each within its own
number of working hours. One stage runs at a time; its instants are stored on the case
(`stage_warn_at`, `stage_due_at`) and its card in `stage_warning`, so the sweep, which reads
cases by `next_check_at`, warns and marks each stage red exactly once; the red card escalates
the case to its 村居 (level 1), once per stage run."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from dispatch import sla
from dispatch.calendar import WorkCalendar
from dispatch.models import Case, CaseStatus, WarningLevel
from dispatch.policy import Policy
from dispatch.workflow import CLOCK_STATUSES
from taxonomy.catalogue import VILLAGE_LEVEL


class Stage(StrEnum):
    ACCEPT = "accept"  # 签收, by the unit
    HANDLE = "handle"  # 处置, the catalogue's limit (the case's `due_at`)
    VERIFY = "verify"  # 核查, by the grid worker


# The status in which a timed stage runs.
STAGE_OF_STATUS = {CaseStatus.DISPATCHED: Stage.ACCEPT, CaseStatus.RESOLVED: Stage.VERIFY}


def stage_hours(stage: Stage, policy: Policy, case: Case) -> float:
    """The stage's limit: the case's item's (条) when the catalogue sets one, else the
    service's."""
    if stage is Stage.ACCEPT:
        return case.accept_hours or policy.accept_limit_hours
    return case.verify_hours or policy.verify_limit_hours


def current_stage(case: Case) -> Stage | None:
    return STAGE_OF_STATUS.get(CaseStatus(case.status))


def start_stage(case: Case, *, calendar: WorkCalendar, policy: Policy, now: datetime) -> None:
    """A timed stage starts now (status just became dispatched or resolved), or none runs."""
    stage = current_stage(case)
    case.stage_warning = WarningLevel.NONE
    if stage is None:
        case.stage_warn_at = case.stage_due_at = None
        return
    limit = stage_hours(stage, policy, case) * 3600.0
    case.stage_warn_at = calendar.add_working_seconds(now, limit * policy.warn_fraction)
    case.stage_due_at = calendar.add_working_seconds(now, limit)


def apply_stage(case: Case, *, now: datetime, events: list[str]) -> datetime | None:
    """Add `stage_warning` / `stage_overdue` when the running stage crossed an instant; the
    stage's next instant to check (None: nothing left)."""
    stage = current_stage(case)
    if stage is None or case.stage_due_at is None or case.stage_warn_at is None:
        return None
    level = WarningLevel(case.stage_warning)
    if now >= case.stage_due_at:
        if level is not WarningLevel.RED:
            # A stage left lying (not accepted, not checked) is the 村居's to chase: its red
            # card escalates to level 1 each time, never further (the case's own ladder does).
            events += ["stage_overdue", sla.ESCALATED_WITH_CARD]
            case.stage_warning = WarningLevel.RED
            case.escalation_level = max(case.escalation_level, VILLAGE_LEVEL)
        return None
    if now >= case.stage_warn_at:
        if level is WarningLevel.NONE:
            events.append("stage_warning")
            case.stage_warning = WarningLevel.YELLOW
        return case.stage_due_at
    return case.stage_warn_at


def stage_view(case: Case, *, calendar: WorkCalendar, now: datetime) -> list[dict[str, Any]]:
    """The stages running now, each with its deadline and the working hours left (negative:
    past due), for the case answer."""
    found: list[tuple[Stage, datetime | None, str]] = []
    stage = current_stage(case)
    if stage is Stage.ACCEPT:
        found.append((stage, case.stage_due_at, case.stage_warning))
    if CaseStatus(case.status) in CLOCK_STATUSES:
        found.append((Stage.HANDLE, case.due_at, case.warning_level))
    if stage is Stage.VERIFY:
        found.append((stage, case.stage_due_at, case.stage_warning))
    view = []
    for name, due, warning in found:
        left = None
        if due is not None:
            if due >= now:
                left = calendar.working_seconds_between(now, due)
            else:
                left = -calendar.working_seconds_between(due, now)
        view.append(
            {
                "stage": name.value,
                "due_at": due,
                "warning_level": warning,
                "remaining_working_hours": None if left is None else round(left / 3600, 2),
            }
        )
    return view
