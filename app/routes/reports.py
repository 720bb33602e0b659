"""HTTP glue for reports: one, or a batch synced from an offline phone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter, ValidationError

from app.deps import ActorDep, LanguageDep, RuntimeDep, SessionDep, require_role, runtime_of
from core import privacy
from core.db import session_scope
from core.errors import GridgovError, Lang, RequestInvalid
from core.models import Role
from core.text import displayable
from dispatch.names import case_names
from dispatch.schemas import CaseOut, case_out, disclosures
from events import service as events_service
from events.schemas import BatchIn, BatchItemOut, BatchOut, ClientId, ReportIn
from events.service import Reporter
from media import service as media_service

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.post(
    "",
    response_model=CaseOut,
    status_code=201,
    responses={200: {"model": CaseOut, "description": "client_id seen before: the same case"}},
)
def create_report(report: ReportIn, request: Request, actor: ActorDep) -> Response:
    """File a report: 201 with the new case, or 200 with the same case when client_id repeats.

    The endpoint owns its transaction (committed before the answer is sent, rolled back on any
    error, as `SessionDep` does): a generator dependency runs its enter and its exit in the
    threadpool, two more thread hops per report than the one the endpoint itself needs. The
    runtime comes from the request, not `RuntimeDep`: one dependency less to resolve."""
    require_role(actor, Role.GRID_WORKER, Role.DISPATCHER, Role.ADMIN)
    runtime = runtime_of(request)
    ctx = runtime.intake_context()
    now = runtime.now()
    with session_scope(runtime.engine) as session:
        case, created = events_service.intake(
            session, report=report, reporter=Reporter.of_account(actor), now=now, ctx=ctx
        )
        names = case_names(session, [case], catalogue=ctx.taxonomy.catalogue)
        out = case_out(
            case,
            viewer=actor,
            names=names,
            now=now,
            calendars=runtime.calendars,
            # A new case links only the photos its report named: no query when it named none.
            attachments=media_service.links_of(session, [case.id])
            if report.attachment_ids or not created
            else {},
        )
        privacy.record_disclosures(
            session,
            viewer=actor,
            disclosed=disclosures(actor, [out]),
            endpoint="POST /v1/reports",
            now=now,
        )
    if created:
        runtime.metrics.report_filed(case.channel)
    # Already a validated model: send it as is (no second validation by response_model).
    return Response(
        content=out.model_dump_json(),
        status_code=201 if created else 200,
        media_type="application/json",
    )


@router.post("/batch", response_model=BatchOut)
def create_reports_batch(
    batch: BatchIn, runtime: RuntimeDep, session: SessionDep, actor: ActorDep, lang: LanguageDep
) -> BatchOut:
    """Offline sync: each item succeeds or fails on its own (per-item status and error)."""
    require_role(actor, Role.GRID_WORKER)
    reporter = Reporter.of_account(actor)
    ctx = runtime.intake_context()
    now = runtime.now()
    results: list[BatchItemOut] = []
    shown: list[CaseOut] = []
    for index, raw in enumerate(batch.reports):
        client_id = _echoed_client_id(raw)
        savepoint = session.begin_nested()
        try:
            report = ReportIn.model_validate(raw)
            case, created = events_service.intake(
                session, report=report, reporter=reporter, now=now, ctx=ctx
            )
            savepoint.commit()
            if created:
                runtime.metrics.report_filed(case.channel)
            names = case_names(session, [case], catalogue=ctx.taxonomy.catalogue)
            out = case_out(
                case,
                viewer=actor,
                names=names,
                now=now,
                calendars=runtime.calendars,
                attachments=media_service.links_of(session, [case.id]),
            )
            shown.append(out)
            results.append(
                BatchItemOut(
                    index=index,
                    client_id=client_id,
                    status=201 if created else 200,
                    case=out.model_dump(mode="json"),
                )
            )
        except (ValidationError, GridgovError) as exc:
            savepoint.rollback()
            error = (
                RequestInvalid(errors=exc.errors(include_input=False)[:1])
                if isinstance(exc, ValidationError)
                else exc
            )
            results.append(
                BatchItemOut(
                    index=index,
                    client_id=client_id,
                    status=error.status_code,
                    error=_item_error(error, lang),
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


def _item_error(exc: GridgovError, lang: Lang) -> dict[str, str]:
    """An item's error as the whole answer's would be (the first defect of an invalid report;
    field names come from the client: made safe)."""
    return {"error": exc.code, "detail": displayable(exc.message(lang))}
