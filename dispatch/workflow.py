"""The closed loop (闭环): its actions, who takes them (role and place) and the open statuses.

The transition table itself (sources, target, party, fields, effect) is `dispatch.actions`."""

from __future__ import annotations

from enum import StrEnum

from core.models import Role
from dispatch.models import CaseStatus as S


class Action(StrEnum):
    REGISTER = "register"  # 受理/立案
    REJECT = "reject"  # 不予立案/作废
    DISPATCH = "dispatch"  # 派遣 (also 改派 after a return)
    ACCEPT = "accept"  # 签收
    RETURN = "return"  # 退单: the unit says "not ours"
    EXTEND = "extend"  # 延期, approved by the command centre
    SUSPEND = "suspend"  # 挂起: clock paused
    RESUME = "resume"
    RESOLVE = "resolve"  # 反馈: the unit reports the result
    VERIFY = "verify"  # 核查: the grid worker checks on site (failed → 重办)
    CLOSE = "close"  # 结案
    REOPEN = "reopen"  # 重办 after closure (e.g. resident dissatisfied)
    MERGE = "merge"  # 并单 into another case
    SUPERVISE = "supervise"  # 督办 by a command centre at or above the case's escalation level
    REQUEST_EXTENSION = "request_extension"  # 延期申请 by the unit, in working hours
    APPROVE_EXTENSION = "approve_extension"  # the command centre grants it
    DENY_EXTENSION = "deny_extension"  # … or refuses it
    VISIT = "visit"  # 回访 after closure: the resident's satisfaction
    RECATEGORIZE = "recategorize"  # 改类: category (so unit and limit) changed by the centre


class Party(StrEnum):
    """Who acts: the command centre, the case's unit, or the worker of the case's grid."""

    COMMAND_CENTRE = "command_centre"
    DEPARTMENT = "department"
    GRID_WORKER = "grid_worker"


OPEN_STATUSES = frozenset({S.REPORTED, S.REGISTERED, S.DISPATCHED, S.ACCEPTED})
CLOCK_STATUSES = OPEN_STATUSES  # statuses in which the SLA clock runs


def may_act(
    party: Party,
    *,
    role: Role,
    actor_department: str | None,
    actor_grids: frozenset[str],
    case_department: str,
    case_grid: str,
    actor_area: str | None = None,
) -> bool:
    """Role and place: a command centre inside its area (a 镇街 or 村居 centre; the district's
    everywhere), only the case's unit, only the worker of the case's grid."""
    if party is Party.COMMAND_CENTRE:
        return role in (Role.DISPATCHER, Role.ADMIN) and case_grid.startswith(actor_area or "")
    if party is Party.DEPARTMENT:
        return role is Role.DEPARTMENT and actor_department == case_department
    return role is Role.GRID_WORKER and case_grid in actor_grids
