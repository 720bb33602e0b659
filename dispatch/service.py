"""The case rules other packages use, in one place (`from dispatch import service as
dispatch_service`). Services flush, never commit. The rules live by concern:

- `dispatch.cases`: intake (`open_case`), visibility, one case, the filtered list;
- `dispatch.actions`: the transition table and the generic `act()`;
- `dispatch.clock`: calendars, deadlines, yellow/red cards, escalation and the sweep;
- `dispatch.changes`: the one seam of every change (history row + typed event);
- `dispatch.history`: the audit history queue and its linking at commit;
- `dispatch.audit_check`: verifying the audit log and signing its head.
"""

from __future__ import annotations

from dispatch.actions import Transition, act, available_actions
from dispatch.audit_check import audit_checkpoint, audit_reader, verify_audit
from dispatch.cases import (
    FINISHED_STATUSES,
    CaseFilter,
    CasePage,
    CaseSort,
    NewCase,
    Routing,
    case_key,
    case_no_for,
    get_case,
    list_cases,
    next_case_id,
    next_case_id_sql,
    open_case,
    open_cases_by_subcategory,
    require_department,
    routing_for,
    row_values,
    visibility,
)
from dispatch.changes import CaseEvent, EventType, add_event_hook, change, pending_events
from dispatch.clock import SWEEP_COUNTS, CalendarProvider, sweep
from dispatch.effects import ActionParams
from dispatch.history import history
from dispatch.history import record as _record
from dispatch.policy import Policy

__all__ = [
    "FINISHED_STATUSES",
    "SWEEP_COUNTS",
    "ActionParams",
    "CalendarProvider",
    "CaseEvent",
    "CaseFilter",
    "CasePage",
    "CaseSort",
    "EventType",
    "NewCase",
    "Policy",
    "Routing",
    "Transition",
    "_record",
    "act",
    "add_event_hook",
    "audit_checkpoint",
    "audit_reader",
    "available_actions",
    "case_key",
    "case_no_for",
    "change",
    "get_case",
    "history",
    "list_cases",
    "next_case_id",
    "next_case_id_sql",
    "open_case",
    "open_cases_by_subcategory",
    "pending_events",
    "require_department",
    "routing_for",
    "row_values",
    "sweep",
    "verify_audit",
    "visibility",
]
