"""GET /v1/me/tasks: the grid worker's phone app — cases waiting for their on-site check (核查)
and their own reports with what became of them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from app.deps import ActorDep, RuntimeDep, SessionDep, require_role
from app.params import only_params
from app.runtime import Runtime
from core import privacy
from core.models import Role
from core.security import Actor
from dispatch import duplicates
from dispatch.models import Case
from dispatch.names import case_names
from dispatch.schemas import MAX_ID, CaseOut, case_out, disclosures
from dispatch.stages import Stage
from dispatch.worklist import verify_queue
from events.reporters import reports_by
from events.service import Reporter

router = APIRouter(prefix="/v1/me", tags=["grid workers"])

# A grid has a few hundred households: more checks waiting than this is a backlog to page.
MAX_VERIFY = 200


class VerifyTaskOut(BaseModel):
    due_at: datetime | None = Field(description="the 核查 stage's deadline")
    remaining_working_hours: float | None = Field(
        description="working hours left until due_at (negative: past due)"
    )
    warning_level: str = Field(description="the stage's card: none, yellow, red")
    case: CaseOut


class VerifyTasksOut(BaseModel):
    items: list[VerifyTaskOut] = Field(description="soonest due first")
    total: int


class OwnReportOut(BaseModel):
    client_id: str
    received_at: datetime
    case: CaseOut = Field(
        description="the case the report made, as it is now (merged: see `merged_into`)"
    )


class OwnReportsOut(BaseModel):
    items: list[OwnReportOut] = Field(description="newest first")
    total: int


class TasksOut(BaseModel):
    verify: VerifyTasksOut = Field(description="核查: resolved cases in the worker's grids")
    reports: OwnReportsOut = Field(description="the worker's own reports (paged)")


def _outs(session: Session, runtime: Runtime, actor: Actor, cases: list[Case]) -> list[CaseOut]:
    names = case_names(session, cases, catalogue=runtime.taxonomy.get().catalogue)
    related = duplicates.related(session, cases, viewer=actor)
    now = runtime.now()
    return [
        case_out(
            c, viewer=actor, names=names, now=now, calendars=runtime.calendars, related=related
        )
        for c in cases
    ]


def _verify_task(out: CaseOut) -> VerifyTaskOut:
    stage = next((s for s in out.stages if s.stage == Stage.VERIFY.value), None)
    return VerifyTaskOut(
        due_at=None if stage is None else stage.due_at,
        remaining_working_hours=None if stage is None else stage.remaining_working_hours,
        warning_level="none" if stage is None else stage.warning_level,
        case=out,
    )


@router.get("/tasks", response_model=TasksOut)
def my_tasks(
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(("limit", "offset")))],
    limit: Annotated[int, Query(ge=1, le=200, description="reports per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="reports to skip")] = 0,
) -> TasksOut:
    """A grid worker's list (other roles: 403 `wrong_role`): every check waiting in their grids
    (up to 200, soonest due first; `total` counts all) and one page of their own reports."""
    require_role(actor, Role.GRID_WORKER)
    queue = verify_queue(session, actor=actor, limit=MAX_VERIFY)
    reporter = Reporter.of_account(actor)
    rows, total = reports_by(
        session,
        channel=reporter.channel.value,
        identity=reporter.identity,
        limit=limit,
        offset=offset,
    )
    verify_outs = _outs(session, runtime, actor, queue.items)
    report_outs = _outs(session, runtime, actor, [case for _, case in rows])
    privacy.record_disclosures(
        session,
        viewer=actor,
        disclosed=disclosures(actor, [*verify_outs, *report_outs]),
        endpoint="GET /v1/me/tasks",
        now=runtime.now(),
    )
    return TasksOut(
        verify=VerifyTasksOut(items=[_verify_task(o) for o in verify_outs], total=queue.total),
        reports=OwnReportsOut(
            items=[
                OwnReportOut(client_id=r.client_id, received_at=r.received_at, case=out)
                for (r, _), out in zip(rows, report_outs, strict=True)
            ],
            total=total,
        ),
    )
