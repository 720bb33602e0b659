"""HTTP glue for cases (list, read, act) and the departments they go to."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import Session, col

from app.deps import ActorDep, CaseTurnDep, RuntimeDep, SessionDep, require_role
from app.params import only_params
from app.runtime import Runtime
from core import privacy
from core.errors import InvalidDatetime
from core.models import Role
from core.security import Actor
from core.text import Identifier
from dispatch import duplicates
from dispatch import service as dispatch_service
from dispatch.actions import TRANSITIONS
from dispatch.models import Case, CaseStatus, Channel, Department
from dispatch.names import case_names
from dispatch.schemas import (
    MAX_ID,
    ActionIn,
    CaseListOut,
    CaseOut,
    DepartmentListOut,
    DepartmentOut,
    DuplicatesOut,
    candidate_out,
    case_out,
    disclosures,
)
from dispatch.service import CaseSort
from dispatch.workflow import Action
from grid import service as grid_service
from media import service as media_service

router = APIRouter(prefix="/v1/cases", tags=["cases"])
departments_router = APIRouter(prefix="/v1/departments", tags=["departments"])

# A case is named by its id or its case_no (local report date + zero-padded id, 14 digits).
CaseRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=32,
        pattern=r"^[0-9]+$",
        description="the case's id or its 14-digit case_no",
    ),
]

SLA_WARNING_LEVEL = {"ok": "none", "warning": "yellow", "overdue": "red"}
_LIST_PARAMS = (
    "status",
    "category_code",
    "department_code",
    "area_code",
    "channel",
    "sla",
    "escalated_to",
    "q",
    "from",
    "to",
    "sort",
    "limit",
    "offset",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_DOC = "a date (local, YYYY-MM-DD) or a datetime (ISO 8601; without an offset: local time)"


def case_ref(raw: str) -> int | str:
    """An id (up to 10 digits) or a case_no; an id beyond the database's range names no case."""
    if len(raw) <= 10:
        number = int(raw)
        return number if number <= MAX_ID else raw
    return raw


def _instant(raw: str | None, *, name: str, tz: ZoneInfo, end_of_day: bool) -> datetime | None:
    """A `from`/`to` bound as an instant; a date means its local start (or, for `to`, its end)."""
    if raw is None:
        return None
    try:
        if _DATE.match(raw):
            day = date.fromisoformat(raw)
            if end_of_day:
                day += timedelta(days=1)
            moment = datetime.combine(day, time(), tzinfo=tz)
        else:
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
            # `to` is inclusive; the filter's bound is exclusive (timestamps keep microseconds).
            if end_of_day:
                moment += timedelta(microseconds=1)
        # In UTC here, so that no bound near year 1 or 9999 overflows later in the query.
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidDatetime(name=name) from None
    if not 1900 <= moment.year <= 2200:
        raise InvalidDatetime(name=name)
    return moment


def _answers(session: Session, runtime: Runtime, actor: Actor, cases: list[Case]) -> list[CaseOut]:
    names = case_names(session, cases, catalogue=runtime.taxonomy.get().catalogue)
    related = duplicates.related(session, cases, viewer=actor)
    photos = media_service.links_of(session, [c.id for c in cases])
    now = runtime.now()
    return [
        case_out(
            c,
            viewer=actor,
            names=names,
            now=now,
            calendars=runtime.calendars,
            related=related,
            attachments=photos,
        )
        for c in cases
    ]


@router.get(
    "",
    response_model=CaseListOut,
)
def list_cases(
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(_LIST_PARAMS, repeatable=["status"]))],
    status: Annotated[list[CaseStatus] | None, Query(description="repeatable: any of")] = None,
    category_code: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
    department_code: Annotated[Identifier | None, Query(max_length=16)] = None,
    area_code: Annotated[
        str | None,
        Query(pattern=r"^(\d{3}){2,5}$", description="district, town, village or grid code"),
    ] = None,
    channel: Annotated[Channel | None, Query()] = None,
    sla: Annotated[str | None, Query(pattern=r"^(ok|warning|overdue)$")] = None,
    escalated_to: Annotated[
        str | None,
        Query(
            pattern=r"^me$",
            description="me: cases whose escalation reached the caller's command centre "
            "(村居 level 1, 镇街 2, district 3) or went beyond it",
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="text in the description or case_no"),
    ] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40, description=_TIME_DOC)] = None,
    to: Annotated[str | None, Query(max_length=40, description=_TIME_DOC + "; inclusive")] = None,
    sort: Annotated[CaseSort, Query()] = CaseSort.REPORTED_AT_DESC,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> CaseListOut:
    """Cases this caller may see (role and place), filtered; `total` counts every page."""
    tz = ZoneInfo(runtime.settings.timezone)
    page = dispatch_service.list_cases(
        session,
        actor=actor,
        filters=dispatch_service.CaseFilter(
            statuses=tuple(dict.fromkeys(status or ())),
            category_code=category_code,
            department_code=department_code,
            area_code=area_code,
            channel=None if channel is None else channel.value,
            warning_level=None if sla is None else SLA_WARNING_LEVEL[sla],
            escalated_to_me=escalated_to == "me",
            text=None if q is None else q.strip() or None,
            reported_from=_instant(from_, name="from", tz=tz, end_of_day=False),
            reported_until=_instant(to, name="to", tz=tz, end_of_day=True),
            sort=sort,
            limit=limit,
            offset=offset,
        ),
    )
    items = _answers(session, runtime, actor, page.items)
    privacy.record_disclosures(
        session,
        viewer=actor,
        disclosed=disclosures(actor, items),
        endpoint="GET /v1/cases",
        now=runtime.now(),
    )
    return CaseListOut(items=items, total=page.total)


@router.get("/{case_id}", response_model=CaseOut)
def get_case(
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(()))],
    case_id: CaseRef,
) -> CaseOut:
    """One case, by id or case_no, with its history."""
    case = dispatch_service.get_case(session, case_id=case_ref(case_id), actor=actor)
    return _one_case(session, runtime, actor, case, endpoint="GET /v1/cases/{id}")


@router.get("/{case_id}/duplicates", response_model=DuplicatesOut)
def get_duplicates(
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(()))],
    case_id: CaseRef,
) -> DuplicatesOut:
    """并单 candidates of a case (command centres): the cases it could be merged into, and the
    later reports that could be merged into it; cases outside a scoped centre's area are left
    out, and so are candidates since closed, rejected or merged."""
    require_role(actor, Role.ADMIN, Role.DISPATCHER)
    case = dispatch_service.get_case(session, case_id=case_ref(case_id), actor=actor)
    assert case.id is not None
    found = duplicates.candidates_of(session, [case.id], viewer=actor)
    later = duplicates.later_reports_of(session, case.id, viewer=actor)
    return DuplicatesOut(
        items=[candidate_out(c) for c in found.get(case.id, ())],
        later=[candidate_out(c) for c in later],
    )


@router.post("/{case_id}/{action}", response_model=CaseOut)
def act(
    _turn: CaseTurnDep,
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    case_id: CaseRef,
    action: Action,
    body: ActionIn | None = None,
) -> CaseOut:
    """One workflow step; illegal steps are 409 `illegal_transition`, wrong actors 403."""
    params = body or ActionIn()

    case = dispatch_service.act(
        session,
        case_id=case_ref(case_id),
        action=action,
        params=dispatch_service.ActionParams(**params.model_dump()),
        actor=actor,
        now=runtime.now(),
        calendars=runtime.calendars,
        policy=runtime.policy,
        catalogue=runtime.taxonomy.get().catalogue,
        grid_exists=lambda code: grid_service.grid_is_active(session, code),
    )
    return _one_case(session, runtime, actor, case, endpoint=f"POST /v1/cases/{{id}}/{action}")


def _one_case(
    session: Session, runtime: Runtime, actor: Actor, case: Case, *, endpoint: str
) -> CaseOut:
    """A case as `actor` may see it, with names and history; clear personal data read is logged."""
    assert case.id is not None
    names = case_names(session, [case], catalogue=runtime.taxonomy.get().catalogue)
    out = case_out(
        case,
        viewer=actor,
        names=names,
        history=dispatch_service.history(session, case.id),
        now=runtime.now(),
        calendars=runtime.calendars,
        related=duplicates.related(session, [case], viewer=actor),
        attachments=media_service.links_of(session, [case.id]),
    )
    privacy.record_disclosures(
        session,
        viewer=actor,
        disclosed=disclosures(actor, [out]),
        endpoint=endpoint,
        now=runtime.now(),
    )
    return out


@departments_router.get("", response_model=DepartmentListOut)
def list_departments(
    session: SessionDep, actor: ActorDep, _known: Annotated[None, Depends(only_params(()))]
) -> DepartmentListOut:
    """Every department (unit) cases can go to, by code; retired ones say `active: false`."""
    rows = session.execute(select(Department).order_by(col(Department.code))).scalars()
    return DepartmentListOut(
        items=[
            DepartmentOut(code=d.code, name=d.name, short_name=d.short_name, active=d.active)
            for d in rows
        ]
    )


workflow_router = APIRouter(prefix="/v1/workflow", tags=["cases"])


class ActionFormOut(BaseModel):
    action: str
    label: str = Field(description="the action's name on a button (Chinese)")
    party: str = Field(description="who takes it: command_centre, department or grid_worker")
    needs: list[str] = Field(description="fields the action requires")
    takes: list[str] = Field(description="fields it also takes")
    photos: bool = Field(description="takes `attachment_ids` (photos uploaded first)")


class ActionFormListOut(BaseModel):
    items: list[ActionFormOut]


@workflow_router.get("/actions", response_model=ActionFormListOut)
def list_action_forms(
    actor: ActorDep, _known: Annotated[None, Depends(only_params(()))]
) -> ActionFormListOut:
    """The workflow's actions as forms: label, party and fields (from the transition table);
    which of them a caller may take on a case now is the case's `actions`."""
    return ActionFormListOut(
        items=[
            ActionFormOut(
                action=action.value,
                label=row.label,
                party=row.party.value,
                needs=sorted(row.needs),
                takes=sorted(row.takes - row.needs),
                photos=row.attachments is not None,
            )
            for action, row in TRANSITIONS.items()
        ]
    )
