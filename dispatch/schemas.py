"""API shapes of cases and workflow actions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from core import privacy
from core.models import Role
from core.privacy import PiiKind
from core.security import Actor, mask_name
from core.text import CleanText, Identifier
from dispatch import duplicates
from dispatch.actions import available_actions
from dispatch.clock import CalendarProvider
from dispatch.models import Case, CaseHistory
from dispatch.names import STATUS_LABELS, CaseNames
from dispatch.stages import stage_view


class HistoryOut(BaseModel):
    seq: int
    action: str
    from_status: str | None
    to_status: str
    actor: str
    actor_role: str
    at: datetime
    reason: str | None
    data: dict[str, Any]


class AreaPathItem(BaseModel):
    code: str
    name: str
    level: str


class StageOut(BaseModel):
    stage: str = Field(
        description="accept (签收), handle (处置, the catalogue's limit), verify (核查)"
    )
    due_at: datetime | None
    warning_level: str
    remaining_working_hours: float | None = Field(
        description="working hours left until due_at (negative: past due)"
    )


class DuplicateCandidateOut(BaseModel):
    """并单 candidate: an open case of the same category near this one when it came in."""

    case_id: int
    case_no: str
    distance_m: float
    status: str
    reported_at: datetime


class MergedIntoOut(BaseModel):
    id: int
    case_no: str


class CaseAttachmentOut(BaseModel):
    """A photo the case uses: `GET /v1/attachments/{id}` (`?size=thumb`) serves it."""

    id: str
    purpose: Literal["report", "resolve", "verify"] = Field(
        description="report: the reporter's; resolve: the unit's after-photo; verify: the check"
    )
    content_type: str
    width: int
    height: int


class DuplicatesOut(BaseModel):
    items: list[DuplicateCandidateOut] = Field(
        description="cases this one could be merged into (its candidates), nearest first"
    )
    later: list[DuplicateCandidateOut] = Field(
        description="cases reported later that named this one and may still be merged into it"
    )


def candidate_out(c: duplicates.Candidate) -> DuplicateCandidateOut:
    return DuplicateCandidateOut(
        case_id=c.case_id,
        case_no=c.case_no,
        distance_m=c.distance_m,
        status=c.status,
        reported_at=c.reported_at,
    )


class CaseOut(BaseModel):
    id: int
    case_no: str
    status: str
    status_label: str = Field(description="the status in Chinese, e.g. 已派遣")
    channel: str = Field(
        description="how the case came in: grid_worker, wechat, open311, dispatcher"
    )
    description: str
    lat: float
    lng: float
    grid_code: str
    grid_rule: str
    category_code: str
    category_name: str | None
    subcategory_code: str
    subcategory_name: str | None
    classification_score: float | None
    classification_uncertain: bool | None = Field(
        description="the classifier was not sure of its category at intake: look first "
        "(null: the reporter named the category, or the case is older than the flag)"
    )
    item_code: str | None = Field(description="the item (条) the case was registered as")
    item_name: str | None
    catalogue_revision: int = Field(
        description="the catalogue revision that routed the case (0: the packaged one); an "
        "import since does not change its ladder or limits"
    )
    department_code: str
    department_name: str | None
    area_path: list[AreaPathItem] = Field(description="district → grid")
    urgency: str
    time_limit: dict[str, Any]
    due_at: datetime | None
    warn_at: datetime | None
    warning_level: str
    escalation_level: int
    extension_count: int
    extension_request_hours: int | None = Field(
        description="延期: working hours the unit asked for, awaiting the command centre"
    )
    visit_satisfaction: str | None = Field(description="回访: the resident's satisfaction")
    visited_at: datetime | None
    reopen_until: datetime | None = Field(
        description="a dissatisfied 回访 allows reopening the closed case until then"
    )
    return_count: int
    redo_count: int
    merged_into_id: int | None
    merged_into: MergedIntoOut | None = Field(
        default=None, description="并单: the case this one was merged into (it lives on there)"
    )
    duplicate_candidates: list[DuplicateCandidateOut] = Field(
        default_factory=list,
        description="并单 candidates found at intake that could still take this case, nearest "
        "first (command centres only; cases outside a scoped centre's area are left out)",
    )
    attachments: list[CaseAttachmentOut] = Field(
        default_factory=list, description="the case's photos, in the order they were added"
    )
    reported_at: datetime
    occurred_at: datetime | None
    registered_at: datetime | None
    dispatched_at: datetime | None
    accepted_at: datetime | None
    resolved_at: datetime | None
    verified_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    version: int
    actions: list[str] = Field(
        description="the actions this caller may take on the case now (role, place, status)"
    )
    stages: list[StageOut] = Field(
        default_factory=list, description="the stages running now, each with its own limit"
    )
    history: list[HistoryOut] | None = None


def case_out(
    case: Case,
    *,
    viewer: Actor,
    names: CaseNames,
    history: list[CaseHistory] | None = None,
    now: datetime | None = None,
    calendars: CalendarProvider | None = None,
    related: duplicates.Related | None = None,
    attachments: Mapping[int, list[dict[str, Any]]] | None = None,
) -> CaseOut:
    """A case as this viewer may see it: outside the centre, actor names are masked and so are
    phone and ID-card numbers in the description, reasons and data (see `core.privacy`)."""
    assert case.id is not None
    full_names = viewer.is_command_centre
    clear = privacy.sees_personal_data(viewer)
    return CaseOut(
        id=case.id,
        case_no=case.case_no,
        status=case.status,
        status_label=STATUS_LABELS.get(case.status, case.status),
        channel=case.channel,
        description=case.description if clear else privacy.mask_pii(case.description),
        lat=case.lat,
        lng=case.lng,
        grid_code=case.grid_code,
        grid_rule=case.grid_rule,
        category_code=case.category_code,
        category_name=names.category_name(case.category_code),
        subcategory_code=case.subcategory_code,
        subcategory_name=names.subcategory_name(case.subcategory_code),
        classification_score=case.classification_score,
        classification_uncertain=case.classification_uncertain,
        item_code=case.item_code,
        item_name=names.item_name(case.subcategory_code, case.item_code),
        catalogue_revision=case.catalogue_revision,
        department_code=case.department_code,
        department_name=names.department_name(case.department_code),
        area_path=[
            AreaPathItem(code=a.code, name=a.name, level=a.level)
            for a in names.area_path(case.grid_code)
        ],
        urgency=case.urgency,
        time_limit={"value": case.time_limit_value, "unit": case.time_limit_unit},
        due_at=case.due_at,
        warn_at=case.warn_at,
        warning_level=case.warning_level,
        escalation_level=case.escalation_level,
        extension_count=case.extension_count,
        extension_request_hours=case.extension_request_hours,
        visit_satisfaction=case.visit_satisfaction,
        visited_at=case.visited_at,
        reopen_until=case.reopen_until,
        return_count=case.return_count,
        redo_count=case.redo_count,
        merged_into_id=case.merged_into_id,
        merged_into=None
        if related is None or case.merged_into_id is None
        else MergedIntoOut(
            id=case.merged_into_id, case_no=related.merged_into_nos.get(case.merged_into_id, "")
        ),
        duplicate_candidates=[]
        if related is None
        else [candidate_out(c) for c in related.candidates.get(case.id, ())],
        attachments=[]
        if attachments is None
        else [CaseAttachmentOut(**a) for a in attachments.get(case.id, ())],
        reported_at=case.reported_at,
        occurred_at=case.occurred_at,
        registered_at=case.registered_at,
        dispatched_at=case.dispatched_at,
        accepted_at=case.accepted_at,
        resolved_at=case.resolved_at,
        verified_at=case.verified_at,
        closed_at=case.closed_at,
        updated_at=case.updated_at,
        version=case.version,
        actions=available_actions(case, viewer, now),
        stages=[]
        if calendars is None or now is None
        else [
            StageOut(**s)
            for s in stage_view(
                case, calendar=calendars.for_department(case.department_code), now=now
            )
        ],
        history=None
        if history is None
        else [
            HistoryOut(
                seq=h.seq,
                action=h.action,
                from_status=h.from_status,
                to_status=h.to_status,
                actor=h.actor_name
                if full_names or h.actor_id == viewer.id or h.actor_role == Role.ADMIN
                else (mask_name(h.actor_name) or ""),
                actor_role=h.actor_role,
                at=h.at,
                reason=h.reason if clear or h.reason is None else privacy.mask_pii(h.reason),
                data=h.data if clear else privacy.mask_value(h.data),
            )
            for h in history
        ],
    )


# Ids are PostgreSQL `integer`s: anything larger can name no row (and overflows SQLite's binding).
MAX_ID = 2**31 - 1


def disclosures(viewer: Actor, cases: Iterable[CaseOut]) -> list[tuple[int, frozenset[PiiKind]]]:
    """Which personal data these answers show this viewer in clear, per case (for the log)."""
    if not privacy.sees_personal_data(viewer):
        return []
    found = []
    for out in cases:
        texts: list[Any] = [out.description]
        for h in out.history or ():
            texts.extend((h.reason, h.data))
        kinds = privacy.find_pii_in(texts)
        if kinds:
            found.append((out.id, kinds))
    return found


class ActionIn(BaseModel):
    """Parameters of a workflow action; which ones are needed depends on the action."""

    model_config = ConfigDict(extra="forbid")

    reason: CleanText | None = Field(default=None, max_length=2000)
    note: CleanText | None = Field(default=None, max_length=4000)
    department_code: Identifier | None = Field(default=None, max_length=16)
    grid_code: Identifier | None = Field(default=None, max_length=15)
    subcategory_code: Identifier | None = Field(default=None, max_length=8)
    item_code: Identifier | None = Field(
        default=None,
        max_length=8,
        description="register / recategorize: the item (条) of the subcategory, whose unit "
        "(per area), urgency and limits then apply",
    )
    amount: StrictFloat | None = Field(
        default=None, description="extend: how much, a whole number of the case's unit"
    )
    passed: bool | None = Field(default=None, description="verify: false sends it back (重办)")
    hours: StrictInt | None = Field(
        default=None, description="request_extension: whole working hours asked for"
    )
    satisfaction: Literal["satisfied", "basically_satisfied", "dissatisfied"] | None = Field(
        default=None, description="visit (回访): the resident's satisfaction"
    )
    category_code: Identifier | None = Field(
        default=None, max_length=2, description="recategorize: the category (optional check)"
    )
    into_case_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    attachment_ids: list[Annotated[Identifier, Field(max_length=64)]] = Field(
        default_factory=list,
        max_length=20,
        description="resolve / verify: ids of the photos uploaded (POST /v1/attachments)",
    )
    expected_version: int | None = Field(
        default=None,
        ge=0,
        le=MAX_ID,
        description="reject the action if the case changed since this version",
    )


class CaseListOut(BaseModel):
    items: list[CaseOut]
    total: int = Field(description="cases matching the filters (all pages)")


class DepartmentOut(BaseModel):
    code: str
    name: str
    short_name: str
    active: bool


class DepartmentListOut(BaseModel):
    items: list[DepartmentOut]
