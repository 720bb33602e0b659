"""The workflow as data: one row per action (sources, target, party, fields, effect, event) and
one generic `act()` that runs any row. Adding an action is one row and one effect function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from core.clock import utcnow
from core.errors import (
    AttachmentsNotAccepted,
    BelowEscalationLevel,
    CaseNotFound,
    GridgovError,
    IllegalTransition,
    InvalidAmount,
    InvalidHours,
    InvalidMerge,
    NoteRequired,
    NotPermitted,
    PassedRequired,
    ReasonRequired,
    SatisfactionRequired,
    StaleCase,
    SubcategoryRequired,
)
from core.security import SYSTEM_ACTOR, Actor
from dispatch import effects, followup, stages
from dispatch.cases import case_key
from dispatch.changes import EventType, change
from dispatch.clock import CalendarProvider, apply_sla, record_sla, set_deadlines
from dispatch.effects import ActionParams, Step
from dispatch.models import Case, CaseStatus
from dispatch.names import STATUS_LABELS
from dispatch.policy import Policy
from dispatch.workflow import Action, Party, may_act
from media import service as media_service
from media.service import Purpose
from taxonomy.catalogue import Catalogue

S = CaseStatus

Target = CaseStatus | Callable[[Case, ActionParams], CaseStatus] | None


@dataclass(frozen=True)
class Transition:
    """One row: from which statuses, to which (None: stays; a function: decided by the case or
    the params), by whom, with which fields, doing what, told as which event."""

    sources: frozenset[CaseStatus]
    target: Target
    party: Party
    effect: Callable[[Step], None]
    event: EventType
    needs: frozenset[str] = frozenset()
    # A further rule on the actor and the case, beyond party and place: the error refusing it.
    check: Callable[[Case, Actor, datetime], GridgovError | None] | None = None
    # Takes the actor's photos (`attachment_ids`), linked to the case for this purpose.
    attachments: Purpose | None = None
    # The action's name on a button (Chinese), and the fields it takes beyond `needs`.
    label: str = ""
    takes: frozenset[str] = frozenset({"note"})

    def target_of(self, case: Case, params: ActionParams) -> CaseStatus | None:
        if self.target is None or isinstance(self.target, CaseStatus):
            return self.target
        return self.target(case, params)


# Each field a row may need, and the error when it is missing.
FIELD_ERRORS: dict[str, Callable[[Action, Case], GridgovError]] = {
    "reason": lambda action, _: ReasonRequired(action=action.value),
    "note": lambda action, _: NoteRequired(action=action.value),
    "passed": lambda action, _: PassedRequired(action=action.value),
    "amount": lambda _, case: InvalidAmount(limit=effects.max_extension(case)),
    "into_case_id": lambda _, __: InvalidMerge(),
    "hours": lambda _, __: InvalidHours(limit=followup.MAX_REQUEST_HOURS),
    "satisfaction": lambda _, __: SatisfactionRequired(),
    "subcategory_code": lambda _, __: SubcategoryRequired(),
}


def _from(*statuses: CaseStatus) -> frozenset[CaseStatus]:
    return frozenset(statuses)


def _at_or_above_escalation(case: Case, actor: Actor, now: datetime) -> GridgovError | None:
    """督办 comes from the level the escalation reached (1 村居, 2 镇街, 3 district) or above."""
    if actor.centre_level < case.escalation_level:
        return BelowEscalationLevel(level=case.escalation_level, action=Action.SUPERVISE.value)
    return None


CC, DEPT, WORKER = Party.COMMAND_CENTRE, Party.DEPARTMENT, Party.GRID_WORKER
E = EventType

TRANSITIONS: dict[Action, Transition] = {
    Action.REGISTER: Transition(
        label="立案",
        takes=frozenset({"subcategory_code", "item_code", "department_code", "note"}),
        sources=_from(S.REPORTED),
        target=S.REGISTERED,
        party=CC,
        effect=effects.register,
        event=E.REGISTERED,
    ),
    Action.REJECT: Transition(
        label="不予立案",
        sources=_from(S.REPORTED, S.REGISTERED),
        target=S.REJECTED,
        party=CC,
        needs=frozenset({"reason"}),
        effect=effects.no_effect,
        event=E.REJECTED,
    ),
    Action.DISPATCH: Transition(
        label="派遣",
        takes=frozenset({"department_code", "note"}),
        sources=_from(S.REGISTERED),
        target=S.DISPATCHED,
        party=CC,
        effect=effects.dispatch,
        event=E.DISPATCHED,
    ),
    Action.ACCEPT: Transition(
        label="签收",
        sources=_from(S.DISPATCHED),
        target=S.ACCEPTED,
        party=DEPT,
        effect=effects.accept,
        event=E.ACCEPTED,
    ),
    Action.RETURN: Transition(
        label="退单",
        sources=_from(S.DISPATCHED, S.ACCEPTED),
        target=S.REGISTERED,
        party=DEPT,
        needs=frozenset({"reason"}),
        effect=effects.return_,
        event=E.RETURNED,
    ),
    Action.EXTEND: Transition(
        label="延期",
        sources=_from(S.DISPATCHED, S.ACCEPTED),
        target=None,
        party=CC,
        needs=frozenset({"reason", "amount"}),
        effect=effects.extend,
        event=E.EXTENDED,
    ),
    Action.SUSPEND: Transition(
        label="挂起",
        sources=_from(S.DISPATCHED, S.ACCEPTED),
        target=S.SUSPENDED,
        party=CC,
        needs=frozenset({"reason"}),
        effect=effects.suspend,
        event=E.SUSPENDED,
    ),
    Action.RESUME: Transition(
        label="恢复",
        sources=_from(S.SUSPENDED),
        target=effects.resume_target,
        party=CC,
        effect=effects.resume,
        event=E.RESUMED,
    ),
    Action.RESOLVE: Transition(
        label="办结反馈",
        sources=_from(S.ACCEPTED),
        target=S.RESOLVED,
        party=DEPT,
        needs=frozenset({"note"}),
        effect=effects.resolve,
        event=E.RESOLVED,
        attachments=Purpose.RESOLVE,
    ),
    Action.VERIFY: Transition(
        label="核查",
        sources=_from(S.RESOLVED),
        target=effects.verify_target,
        party=WORKER,
        needs=frozenset({"passed"}),
        effect=effects.verify,
        event=E.VERIFIED,
        attachments=Purpose.VERIFY,
    ),
    Action.CLOSE: Transition(
        label="结案",
        sources=_from(S.VERIFIED),
        target=S.CLOSED,
        party=CC,
        effect=effects.close,
        event=E.CLOSED,
    ),
    Action.REOPEN: Transition(
        label="重办",
        sources=_from(S.CLOSED, S.VERIFIED),
        target=S.DISPATCHED,
        party=CC,
        needs=frozenset({"reason"}),
        effect=effects.reopen,
        event=E.REOPENED,
        check=followup.may_reopen,
    ),
    Action.MERGE: Transition(
        label="并单",
        sources=_from(S.REPORTED, S.REGISTERED),
        target=S.MERGED,
        party=CC,
        needs=frozenset({"into_case_id"}),
        effect=effects.merge,
        event=E.MERGED,
    ),
    Action.SUPERVISE: Transition(
        label="督办",
        sources=_from(S.DISPATCHED, S.ACCEPTED, S.SUSPENDED, S.RESOLVED),
        target=None,
        party=CC,
        needs=frozenset({"note"}),
        effect=effects.supervise,
        event=E.SUPERVISED,
        check=_at_or_above_escalation,
    ),
    Action.REQUEST_EXTENSION: Transition(
        label="申请延期",
        sources=_from(S.DISPATCHED, S.ACCEPTED),
        target=None,
        party=DEPT,
        needs=frozenset({"reason", "hours"}),
        effect=followup.request_extension,
        event=E.EXTENSION_REQUESTED,
    ),
    Action.APPROVE_EXTENSION: Transition(
        label="批准延期",
        takes=frozenset({"note"}),
        sources=_from(S.DISPATCHED, S.ACCEPTED),
        target=None,
        party=CC,
        effect=followup.approve_extension,
        event=E.EXTENDED,
        check=followup.pending_request,
    ),
    Action.DENY_EXTENSION: Transition(
        label="驳回延期",
        sources=_from(S.DISPATCHED, S.ACCEPTED),
        target=None,
        party=CC,
        needs=frozenset({"reason"}),
        effect=followup.deny_extension,
        event=E.EXTENSION_DENIED,
        check=followup.pending_request,
    ),
    Action.VISIT: Transition(
        label="回访",
        sources=_from(S.CLOSED),
        target=None,
        party=CC,
        needs=frozenset({"satisfaction"}),
        effect=followup.visit,
        event=E.VISITED,
    ),
    Action.RECATEGORIZE: Transition(
        label="改类",
        takes=frozenset({"category_code", "item_code"}),
        sources=_from(S.REGISTERED, S.DISPATCHED, S.ACCEPTED),
        target=None,  # but a new unit after dispatch: `dispatched` (see the effect)
        party=CC,
        needs=frozenset({"reason", "subcategory_code"}),
        effect=followup.recategorize,
        event=E.RECATEGORIZED,
    ),
}


def _may(transition: Transition, case: Case, actor: Actor) -> bool:
    return may_act(
        transition.party,
        role=actor.role,
        actor_department=actor.department_code,
        actor_grids=actor.grid_codes,
        case_department=case.department_code,
        case_grid=case.grid_code,
        actor_area=actor.area_code,
    )


def available_actions(case: Case, actor: Actor, now: datetime | None = None) -> list[str]:
    """What this actor may do to the case at `now` (role, place, status, the row's own check),
    in the table's order; the fields an action needs are not judged here."""
    status = CaseStatus(case.status)
    at = now or utcnow()
    return [
        str(action)
        for action, transition in TRANSITIONS.items()
        if status in transition.sources
        and _may(transition, case, actor)
        and (transition.check is None or transition.check(case, actor, at) is None)
    ]


def _uploads_of(actor: Actor) -> dict[str, Any]:
    """The owner an account's uploads are checked against (media.service: by account)."""
    return {
        "channel": media_service.ACCOUNT_CHANNEL,
        "identity": str(actor.id),
        "user_id": actor.id,
    }


def _given(params: ActionParams, name: str, reason: str | None, note: str | None) -> bool:
    if name == "reason":
        return reason is not None
    if name == "note":
        return note is not None
    return getattr(params, name) is not None


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
    """Run one row of the table under the case's row lock, with every guard, and record it.

    Acting on a case of another grid or unit is 403 (not 404): the actor is told plainly.
    """
    case: Case | None = session.execute(
        select(Case).where(case_key(case_id)).with_for_update()
    ).scalar()
    if case is None:
        raise CaseNotFound(case=str(case_id))
    transition = TRANSITIONS[action]
    if not _may(transition, case, actor):
        raise NotPermitted(party=transition.party.value, action=action.value)
    if params.expected_version is not None and params.expected_version != case.version:
        raise StaleCase()
    status = CaseStatus(case.status)
    if status not in transition.sources:
        raise IllegalTransition(
            action=action.value,
            status=status.value,
            status_label=STATUS_LABELS[status],
            allowed=", ".join(sorted(transition.sources)),
        )
    refusal = None if transition.check is None else transition.check(case, actor, now)
    if refusal is not None:
        raise refusal
    reason = (params.reason or "").strip() or None
    note = (params.note or "").strip() or None
    for name in FIELD_ERRORS:  # in this order: reason, note, then the action's own
        if name in transition.needs and not _given(params, name, reason, note):
            raise FIELD_ERRORS[name](action, case)
    attachment_ids = list(dict.fromkeys(params.attachment_ids))
    if attachment_ids:
        if transition.attachments is None:
            raise AttachmentsNotAccepted(action=action.value)
        media_service.check(session, attachment_ids, **_uploads_of(actor))

    step = Step(
        session, case, params, actor, now, policy, calendars, catalogue, grid_exists, reason, note
    )
    target = transition.target_of(case, params)
    transition.effect(step)
    if target is not None:
        case.status = target
    calendar = calendars.for_department(case.department_code)
    if case.status != status or (case.status == S.DISPATCHED and case.dispatched_at == now):
        # A stage (签收 once dispatched, 核查 once resolved) starts, or the running one ends.
        stages.start_stage(case, calendar=calendar, policy=policy, now=now)
    if step.deadlines_moved:
        set_deadlines(case, calendar=calendar, policy=policy)
    if note and "note" not in step.data:
        step.data["note"] = note
    if attachment_ids and transition.attachments is not None:
        assert case.id is not None
        media_service.link(
            session,
            attachment_ids,
            case_id=case.id,
            purpose=transition.attachments,
            now=now,
            **_uploads_of(actor),
        )
        step.data["attachment_ids"] = attachment_ids  # in the history row: the audit chain
    case.updated_at = now
    # The consequences on the clock are worked out before the action's entry, so that it (and
    # every entry after it) carries the case's final state; they are logged after it, by the
    # system. A lifted card (`sla_cleared`) needs no entry of its own: the action explains it.
    escalation_before = case.escalation_level
    sla_events = apply_sla(
        case, calendar=calendar, policy=policy, now=now, actor=None, session=None
    )
    change(
        session,
        case,
        policy=policy,
        action=str(action),
        from_status=status,
        actor=actor,
        now=now,
        reason=reason,
        data=step.data,
        event_type=transition.event,
    )
    record_sla(
        session,
        case,
        [e for e in sla_events if e != "sla_cleared"],
        policy=policy,
        actor=SYSTEM_ACTOR,
        now=now,
        escalation_before=escalation_before,
    )
    session.flush()
    return case
