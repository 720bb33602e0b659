"""HTTP glue for cases: list, read, act."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app import privacy
from app.deps import ActorDep, CaseTurnDep, RuntimeDep, SessionDep
from app.text import Identifier
from dispatch import service as dispatch_service
from dispatch.models import CaseStatus, WarningLevel
from dispatch.schemas import MAX_ID, ActionIn, CaseListOut, CaseOut, case_out, disclosures
from dispatch.workflow import Action
from grid import service as grid_service

router = APIRouter(prefix="/v1/cases", tags=["cases"])


@router.get("", response_model=CaseListOut)
def list_cases(
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    status: Annotated[CaseStatus | None, Query()] = None,
    grid_code: Annotated[str | None, Query(max_length=15, pattern=r"^\d{6,15}$")] = None,
    department_code: Annotated[Identifier | None, Query(max_length=16)] = None,
    warning_level: Annotated[WarningLevel | None, Query()] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CaseListOut:
    """Cases this caller may see (role and place), newest first; page with `before_id`."""
    cases = dispatch_service.list_cases(
        session,
        actor=actor,
        filters=dispatch_service.CaseFilter(
            status=status,
            grid_code=grid_code,
            department_code=department_code,
            warning_level=warning_level,
            before_id=before_id,
            limit=limit,
        ),
    )
    items = [case_out(c, viewer=actor) for c in cases]
    privacy.record_disclosures(
        session,
        viewer=actor,
        disclosed=disclosures(actor, items),
        endpoint="GET /v1/cases",
        now=runtime.now(),
    )
    return CaseListOut(items=items, next_before_id=items[-1].id if len(items) == limit else None)


@router.get("/{case_id}", response_model=CaseOut)
def get_case(
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    case_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> CaseOut:
    case = dispatch_service.get_case(session, case_id=case_id, actor=actor)
    assert case.id is not None
    out = case_out(case, viewer=actor, history=dispatch_service.history(session, case.id))
    privacy.record_disclosures(
        session,
        viewer=actor,
        disclosed=disclosures(actor, [out]),
        endpoint="GET /v1/cases/{id}",
        now=runtime.now(),
    )
    return out


@router.post("/{case_id}/{action}", response_model=CaseOut)
def act(
    _turn: CaseTurnDep,
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    case_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    action: Action,
    body: ActionIn | None = None,
) -> CaseOut:
    """One workflow step; illegal steps are 409 `illegal_transition`, wrong actors 403."""
    params = body or ActionIn()

    case = dispatch_service.act(
        session,
        case_id=case_id,
        action=action,
        params=dispatch_service.ActionParams(**params.model_dump()),
        actor=actor,
        now=runtime.now(),
        calendars=runtime.calendars,
        policy=runtime.policy,
        catalogue=runtime.taxonomy.get().catalogue,
        grid_exists=lambda code: grid_service.grid_is_active(session, code),
    )
    assert case.id is not None
    out = case_out(case, viewer=actor, history=dispatch_service.history(session, case.id))
    privacy.record_disclosures(
        session,
        viewer=actor,
        disclosed=disclosures(actor, [out]),
        endpoint=f"POST /v1/cases/{{id}}/{action}",
        now=runtime.now(),
    )
    return out
