"""HTTP glue for reports: one, or a batch synced from an offline phone."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from app.deps import ActorDep, RuntimeDep, SessionDep, require_role
from app.errors import GridgovError
from app.models import Role
from dispatch.schemas import CaseOut, case_out
from events import service as events_service
from events.schemas import BatchIn, BatchItemOut, BatchOut, ReportIn

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.post("", response_model=CaseOut, status_code=201)
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
    # Already a validated model: send it as is (no second validation by response_model).
    return Response(
        content=case_out(case, viewer=actor).model_dump_json(),
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
    for index, raw in enumerate(batch.reports):
        client_id = raw.get("client_id") if isinstance(raw.get("client_id"), str) else None
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
            results.append(
                BatchItemOut(
                    index=index,
                    client_id=client_id,
                    status=201 if created else 200,
                    case=case_out(case, viewer=actor).model_dump(mode="json"),
                )
            )
        except ValidationError as exc:
            savepoint.rollback()
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
            where = ".".join(str(p) for p in first.get("loc", ()))
            results.append(
                BatchItemOut(
                    index=index,
                    client_id=client_id,
                    status=422,
                    error={"error": "validation_error", "detail": f"{where}: {first['msg']}"},
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
    return BatchOut(results=results)
