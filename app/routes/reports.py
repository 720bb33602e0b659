"""HTTP glue for reports: one, or a batch synced from an offline phone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError

from app.deps import ActorDep, RuntimeDep, SessionDep, require_role
from core import privacy
from core.errors import GridgovError
from core.models import Role
from core.text import displayable
from dispatch.names import case_names
from dispatch.schemas import CaseOut, case_out, disclosures
from events import service as events_service
from events.schemas import BatchIn, BatchItemOut, BatchOut, ClientId, ReportIn

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.post(
    "",
    response_model=CaseOut,
    status_code=201,
    responses={200: {"model": CaseOut, "description": "client_id seen before: the same case"}},
)
def create_report(
    report: ReportIn,
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
) -> Response:
    """File a report: 201 with the new case, or 200 with the same case when client_id repeats."""
    require_role(actor, Role.GRID_WORKER, Role.DISPATCHER, Role.ADMIN)
    source = "grid_worker" if actor.role is Role.GRID_WORKER else "command_centre"
    ctx = runtime.intake_context()
    now = runtime.now()
    try:
        case, created = events_service.intake(
            session, report=report, actor=actor, source=source, now=now, ctx=ctx
        )
    except IntegrityError:
        # The same client_id raced in from another request: once more, as a resend.
        session.rollback()
        case, created = events_service.intake(
            session, report=report, actor=actor, source=source, now=now, ctx=ctx
        )
    if created:
        runtime.metrics.report_filed(case.source)
    names = case_names(session, [case], catalogue=ctx.taxonomy.catalogue)
    out = case_out(case, viewer=actor, names=names)
    privacy.record_disclosures(
        session,
        viewer=actor,
        disclosed=disclosures(actor, [out]),
        endpoint="POST /v1/reports",
        now=now,
    )
    # Already a validated model: send it as is (no second validation by response_model).
    return Response(
        content=out.model_dump_json(),
        status_code=201 if created else 200,
        media_type="application/json",
    )


@router.post("/batch", response_model=BatchOut)
def create_reports_batch(
    batch: BatchIn, runtime: RuntimeDep, session: SessionDep, actor: ActorDep
) -> BatchOut:
    """Offline sync: each item succeeds or fails on its own (per-item status and error)."""
    require_role(actor, Role.GRID_WORKER)
    ctx = runtime.intake_context()
    now = runtime.now()
    results: list[BatchItemOut] = []
    shown: list[CaseOut] = []
    for index, raw in enumerate(batch.reports):
        client_id = _echoed_client_id(raw)
        savepoint = session.begin_nested()
        try:
            report = ReportIn.model_validate(raw)
            try:
                case, created = events_service.intake(
                    session, report=report, actor=actor, source="grid_worker", now=now, ctx=ctx
                )
            except IntegrityError:  # raced with another copy: answer as a resend
                savepoint.rollback()
                savepoint = session.begin_nested()
                case, created = events_service.intake(
                    session, report=report, actor=actor, source="grid_worker", now=now, ctx=ctx
                )
            savepoint.commit()
            if created:
                runtime.metrics.report_filed(case.source)
            names = case_names(session, [case], catalogue=ctx.taxonomy.catalogue)
            out = case_out(case, viewer=actor, names=names)
            shown.append(out)
            results.append(
                BatchItemOut(
                    index=index,
                    client_id=client_id,
                    status=201 if created else 200,
                    case=out.model_dump(mode="json"),
                )
            )
        except ValidationError as exc:
            savepoint.rollback()
            results.append(
                BatchItemOut(
                    index=index,
                    client_id=client_id,
                    status=422,
                    error={"error": "validation_error", "detail": _first_problem(exc)},
                )
            )
        except GridgovError as exc:
            savepoint.rollback()
            results.append(
                BatchItemOut(
                    index=index,
                    client_id=client_id,
                    status=exc.status_code,
                    error={"error": exc.code, "detail": exc.detail},
                )
            )
    privacy.record_disclosures(
        session,
        viewer=actor,
        disclosed=disclosures(actor, shown),
        endpoint="POST /v1/reports/batch",
        now=now,
    )
    return BatchOut(results=results)


_CLIENT_ID: TypeAdapter[str] = TypeAdapter(ClientId)


def _echoed_client_id(raw: Any) -> str | None:
    """The item's client_id, echoed in its answer only when it is a valid one."""
    if not isinstance(raw, dict):
        return None
    try:
        return _CLIENT_ID.validate_python(raw.get("client_id"))
    except ValidationError:
        return None


def _first_problem(exc: ValidationError) -> str:
    """`field: message` of the first defect (field names come from the client: made safe)."""
    errors = exc.errors(include_input=False, include_url=False)
    if not errors:
        return "invalid report"
    where = displayable(".".join(str(p) for p in errors[0].get("loc", ())))
    message = displayable(str(errors[0].get("msg", "invalid")))
    return f"{where}: {message}" if where else message
