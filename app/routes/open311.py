"""HTTP glue for Open311 GeoReport v2 (`channels.open311`): every resource as `.xml` (the
spec's required format) or `.json`, errors as the spec's list of {code, description} in the
requested format (XML when the format itself is wrong), never the service's JSON error body.

Statuses follow the spec: 403 for the api_key, 404 for what does not exist, 400 for the rest
the client can fix (our 422s included); 5xx stay 5xx (retry later). `code` in the body is the
HTTP status (as the spec's examples); the stable error code is in `X-Gridgov-Error`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col
from starlette.datastructures import UploadFile

from app.deps import request_language, runtime_of
from app.runtime import Runtime
from channels.open311 import keys, service
from channels.open311.render import MEDIA_TYPES, Format, render
from channels.open311.service import Refused
from core.db import database_trouble, reader, session_scope
from core.errors import (
    GridgovError,
    InternalError,
    Lang,
    Open311FormatNotFound,
    Open311InvalidField,
)
from core.text import displayable
from dispatch.names import case_names
from taxonomy.models import CatalogueRevision

log = logging.getLogger("gridgov.open311")

# Not in /openapi.json: every operation there answers the service's JSON error body, these
# answer GeoReport's (XML or JSON); the spec is their documentation (README, "Open311").
router = APIRouter(prefix="/open311/v2", tags=["open311"], include_in_schema=False)

_FORMATS: dict[str, Format] = {"xml": "xml", "json": "json"}
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _status(errors: list[GridgovError]) -> int:
    """One status for the whole list: 5xx, else 403, else 400, else 404 (all not found)."""
    statuses = {e.status_code for e in errors}
    if any(s >= 500 for s in statuses):
        return max(statuses)
    if 403 in statuses or 401 in statuses:
        return 403
    if statuses == {404}:
        return 404
    return 400


def _spec_code(error: GridgovError) -> int:
    if error.status_code in (401, 403):
        return 403
    if error.status_code == 404 or error.status_code >= 500:
        return error.status_code
    return 400  # our 422 (bad input) and 409 are the spec's 400


def error_response(errors: list[GridgovError], fmt: Format, lang: Lang) -> Response:
    document = [{"code": _spec_code(e), "description": _text(e, lang)} for e in errors]
    headers = {
        "X-Gridgov-Error": ",".join(dict.fromkeys(e.code for e in errors)),
        "Content-Language": "zh-CN" if lang == "zh" else "en",
        "Vary": "Accept-Language",
    }
    retry = [e.retry_after for e in errors if e.retry_after is not None]
    if retry:
        headers["Retry-After"] = str(max(retry))
    return Response(
        render(fmt, "errors", document),
        status_code=_status(errors),
        media_type=MEDIA_TYPES[fmt],
        headers=headers,
    )


def _text(error: GridgovError, lang: Lang) -> str:
    return displayable(error.message(lang))


def _answer(fmt: Format, root: str, document: Any, status: int = 200) -> Response:
    return Response(render(fmt, root, document), status_code=status, media_type=MEDIA_TYPES[fmt])


def _guarded(request: Request, raw_format: str, build: Callable[[Format], Response]) -> Response:
    """Run `build` for a known format and answer every failure in the spec's error format."""
    lang = request_language(request)
    fmt = _FORMATS.get(raw_format)
    if fmt is None:
        return error_response([Open311FormatNotFound()], "xml", lang)
    try:
        return build(fmt)
    except Refused as exc:
        return error_response(exc.errors, fmt, lang)
    except GridgovError as exc:
        return error_response([exc], fmt, lang)
    except SQLAlchemyError as exc:
        trouble = database_trouble(exc)
        if trouble is None:
            log.error("database error", exc_info=exc)
            trouble = InternalError()
        return error_response([trouble], fmt, lang)
    except Exception:
        log.exception("unhandled error in Open311")
        return error_response([InternalError()], fmt, lang)


def _tz(runtime: Runtime) -> ZoneInfo:
    return ZoneInfo(runtime.settings.timezone)


def _only_common(request: Request) -> None:
    """Methods without filters take only the spec's jurisdiction_id (and a stray api_key)."""
    service.check_parameters(request.query_params.multi_items(), ())


@router.get("/discovery.{fmt}", summary="Service Discovery (XML or JSON)")
def discovery(fmt: str, request: Request) -> Response:
    """The endpoint, its formats and how to get an api_key; the changeset follows the catalogue."""

    def build(f: Format) -> Response:
        _only_common(request)
        runtime = runtime_of(request)
        revision = runtime.taxonomy.get().revision
        changed = None
        if revision:
            with session_scope(reader(runtime.engine)) as session:
                changed = session.execute(
                    select(col(CatalogueRevision.created_at)).where(
                        col(CatalogueRevision.id) == revision
                    )
                ).scalar_one_or_none()
        url = str(request.base_url).rstrip("/") + router.prefix
        return _answer(
            f, "discovery", service.discovery(url=url, changeset=changed, tz=_tz(runtime))
        )

    return _guarded(request, fmt, build)


@router.get("/services.{fmt}", summary="GET Service List")
def services(fmt: str, request: Request) -> Response:
    """The catalogue's subcategories as services (group: the category's name)."""

    def build(f: Format) -> Response:
        _only_common(request)
        runtime = runtime_of(request)
        catalogue = runtime.taxonomy.get().catalogue
        with session_scope(reader(runtime.engine)) as session:
            departments = service.department_names(session, catalogue)
        return _answer(f, "services", service.services(catalogue, departments))

    return _guarded(request, fmt, build)


@router.get("/services/{service_code}.{fmt}", summary="GET Service Definition")
def service_definition(service_code: str, fmt: str, request: Request) -> Response:
    """A service's definition: no attributes (every service has metadata false)."""

    def build(f: Format) -> Response:
        _only_common(request)
        catalogue = runtime_of(request).taxonomy.get().catalogue
        return _answer(f, "service_definition", service.service_definition(catalogue, service_code))

    return _guarded(request, fmt, build)


@router.get("/requests.{fmt}", summary="GET Service Requests")
def list_requests(fmt: str, request: Request) -> Response:
    """Requests filed through Open311: by `service_request_id` (comma list, overrides the
    rest) or in a window of at most 90 days (default: the last 90) by `service_code` and
    `status` (open, closed); newest first, at most 1000."""

    def build(f: Format) -> Response:
        runtime = runtime_of(request)
        query = service.parse_query(request.query_params.multi_items(), now=runtime.now())
        with session_scope(reader(runtime.engine)) as session:
            rows = service.find_requests(session, query)
            document = service.request_answers(
                session, rows, catalogue=runtime.taxonomy.get().catalogue, tz=_tz(runtime)
            )
        return _answer(f, "service_requests", document)

    return _guarded(request, fmt, build)


@router.get("/requests/{service_request_id}.{fmt}", summary="GET Service Request")
def get_request(service_request_id: str, fmt: str, request: Request) -> Response:
    """One request filed through Open311 (its id is the case number)."""

    def build(f: Format) -> Response:
        _only_common(request)
        runtime = runtime_of(request)
        with session_scope(reader(runtime.engine)) as session:
            row = service.find_request(session, service_request_id)
            document = service.request_answers(
                session, [row], catalogue=runtime.taxonomy.get().catalogue, tz=_tz(runtime)
            )
        return _answer(f, "service_requests", document)

    return _guarded(request, fmt, build)


@router.get("/tokens/{token}.{fmt}", summary="GET service_request_id from a token")
def get_token(token: str, fmt: str, request: Request) -> Response:
    """The request id a POST's token stands for."""

    def build(f: Format) -> Response:
        _only_common(request)
        runtime = runtime_of(request)
        with session_scope(reader(runtime.engine)) as session:
            document = service.resolve_token(session, token)
        return _answer(f, "service_requests", document)

    return _guarded(request, fmt, build)


@router.post("/requests.{fmt}", summary="POST Service Request")
async def create_request(fmt: str, request: Request) -> Response:
    """File a service request (form-encoded, with `api_key`): lat/long in WGS-84 are required;
    a retry of the same request the same day answers the same id. 201 when created."""
    items: list[tuple[str, str]] | None = None
    problem: GridgovError | None = None
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in _FORM_TYPES:
        problem = Open311InvalidField(
            name="Content-Type",
            rule_zh="须为 application/x-www-form-urlencoded",
            rule_en="must be application/x-www-form-urlencoded",
        )
    elif ctype == _FORM_TYPES[0]:
        # Read here, not by `request.form()`: Starlette decodes a byte that is not
        # percent-encoded as Latin-1, so raw UTF-8 (curl -d '…=路灯坏了') became mojibake.
        try:
            items = parse_qsl(
                (await request.body()).decode("utf-8"),
                keep_blank_values=True,
                encoding="utf-8",
                errors="strict",
            )
        except UnicodeDecodeError:
            problem = Open311InvalidField(
                name="body", rule_zh="须为 UTF-8 编码", rule_en="must be UTF-8"
            )
    else:
        try:
            form = await request.form()
        except Exception:  # a body the form parser cannot read
            problem = Open311InvalidField(
                name="body",
                rule_zh="无法按表单解析",
                rule_en="not a readable form",
            )
        else:
            items = []
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    problem = Open311InvalidField(
                        name=name[:64], rule_zh="不接受文件", rule_en="files are not accepted"
                    )
                    break
                items.append((name, value))
    return await run_in_threadpool(
        _guarded, request, fmt, lambda f: _file(request, f, items, problem)
    )


def _file(
    request: Request,
    fmt: Format,
    items: list[tuple[str, str]] | None,
    problem: GridgovError | None,
) -> Response:
    if problem is not None:
        raise problem
    assert items is not None
    runtime = runtime_of(request)
    ctx = runtime.intake_context()
    with session_scope(reader(runtime.engine)) as session:
        key = keys.authenticate(session, service.api_key_of(items))
    form = service.parse_request_form(items, ctx.taxonomy.catalogue)
    now = runtime.now()
    with session_scope(runtime.engine) as session:
        filed = service.file_request(session, key=key, form=form, now=now, ctx=ctx)
        names = case_names(session, [filed.case], catalogue=ctx.taxonomy.catalogue)
        document = service.post_answer(filed, names)
    if filed.created:
        runtime.metrics.report_filed(filed.case.channel)
    return _answer(fmt, "service_requests", document, status=201 if filed.created else 200)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(rest: str, request: Request) -> Response:
    """Anything else under /open311/v2: the spec's 404, in the format the path names."""
    suffix = rest.rsplit(".", 1)[-1] if "." in rest else ""
    fmt = _FORMATS.get(suffix, "xml")
    return error_response([Open311FormatNotFound()], fmt, request_language(request))
