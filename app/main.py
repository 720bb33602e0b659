"""The FastAPI application factory: routers, one error format, offline docs, the scheduler."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import console
from app.deps import request_language
from app.metrics import install_metrics
from app.openapi import document_errors
from app.routes import (
    attachments,
    auth,
    calendar,
    cases,
    events,
    grids,
    open311,
    reports,
    stats,
    taxonomy,
    warnings,
    webhooks,
    wechat,
    worker,
)
from app.runtime import build_runtime
from app.secret import require_secret_key
from core.clock import Clock, utcnow
from core.db import database_answers, database_trouble, make_engine
from core.errors import (
    GridgovError,
    HttpError,
    InternalError,
    Lang,
    MalformedJson,
    MethodNotAllowed,
    PathNotFound,
    PayloadTooLarge,
    RequestInvalid,
    StaleCase,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    pick_language,
)
from core.settings import Settings, get_settings
from core.text import displayable

log = logging.getLogger("gridgov")

STATIC_DIR = Path(__file__).parent / "static"
# /docs runs only the vendored files: no inline script or style, nothing from another origin.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def error_body(exc: GridgovError, lang: Lang) -> dict[str, str]:
    # A detail may quote the client's text: never let a lone surrogate break the answer.
    return {"error": exc.code, "detail": displayable(exc.message(lang))}


def error_response(
    exc: GridgovError, lang: Lang, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error answer: the body, the status, `Retry-After` when set, the language."""
    sent = dict(headers or {})
    if exc.retry_after is not None:
        sent["Retry-After"] = str(exc.retry_after)
    sent["Content-Language"] = "zh-CN" if lang == "zh" else "en"
    sent["Vary"] = "Accept-Language"
    return JSONResponse(error_body(exc, lang), status_code=exc.status_code, headers=sent)


class BodyLimitMiddleware:
    """Refuse bodies over the limit (413) and non-JSON bodies on JSON endpoints (415).
    `path_limits` gives some paths their own limit (uploads)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        form_paths: frozenset[str],
        path_limits: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.form_paths = form_paths
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        lang = pick_language(headers.get("accept-language"))
        max_bytes = self.path_limits.get(scope["path"], self.max_bytes)
        too_large = PayloadTooLarge(limit=max_bytes)
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            await _send_error(send, too_large, lang)
            return
        path: str = scope["path"]
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if path.startswith("/v1/") and path not in self.form_paths and length not in (None, "0"):
            if ctype != "application/json":
                await _send_error(send, UnsupportedMediaType(), lang)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await _send_error(send, too_large, lang)


class _TooLarge(Exception):
    pass


async def _send_error(send: Send, exc: GridgovError, lang: Lang) -> None:
    response = error_response(exc, lang)
    await send(
        {"type": "http.response.start", "status": exc.status_code, "headers": response.raw_headers}
    )
    await send({"type": "http.response.body", "body": response.body})


def _install_error_handlers(app: FastAPI) -> None:
    """Every failure, the framework's included, becomes one registered error class."""

    @app.exception_handler(GridgovError)
    async def _gridgov(request: Request, exc: GridgovError) -> JSONResponse:
        return error_response(exc, request_language(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return await _gridgov(request, MalformedJson())
        return await _gridgov(request, RequestInvalid(errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        known: dict[int, Callable[[], GridgovError]] = {
            400: MalformedJson,  # FastAPI raises it when the body cannot be parsed at all
            401: Unauthorized,
            404: PathNotFound,
            405: MethodNotAllowed,
        }
        make = known.get(exc.status_code)
        error = make() if make is not None else HttpError(status=exc.status_code)
        return error_response(error, request_language(request), getattr(exc, "headers", None))

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # Also reached from dependencies and caches reading outside the request's session.
        trouble = database_trouble(exc)
        if trouble is None:
            log.error("database error", exc_info=exc)
            return await _gridgov(request, InternalError())
        log.warning("%s %s: %s (%s)", request.method, request.url.path, trouble.code, exc)
        return await _gridgov(request, trouble)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return await _gridgov(request, StaleCase())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return await _gridgov(request, InternalError())


def create_app(
    *,
    settings: Settings | None = None,
    engine: Engine | None = None,
    clock: Clock = utcnow,
    scheduler: bool = False,
) -> FastAPI:
    settings = settings or get_settings()
    require_secret_key(settings)  # InsecureSecretKey: no app on a missing or guessable key
    engine = engine or make_engine(settings.database_url, settings=settings)
    runtime = build_runtime(settings, engine, clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync endpoints run on this many threads; the pool is sized from it (app/db.py).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        if runtime.changes is not None:
            runtime.changes.end_streams_on_exit_signals()
        sched = None
        if scheduler:
            from app.scheduler import start_scheduler

            sched = start_scheduler(runtime)
        try:
            yield
        finally:
            if runtime.changes is not None:
                await runtime.changes.close()
            if sched is not None:
                sched.shutdown(wait=False)

    app = FastAPI(
        title="gridgov",
        summary="网格化社会治理: reports → micro-grid → category → department → deadline → closure",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    _install_error_handlers(app)
    document_errors(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        form_paths=frozenset({"/v1/auth/token", "/v1/auth/session", "/v1/attachments"}),
        path_limits={"/v1/attachments": attachments.upload_limit(settings.attachment_max_bytes)},
    )
    # Last middleware added, so outermost: it times and counts every answer, 413s included.
    install_metrics(app, metrics=runtime.metrics, settings=settings)
    # Swagger UI 5 (reads OpenAPI 3.1), vendored in app/static/swagger-ui: no CDN, no inline script.
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "docs.html",
            media_type="text/html",
            headers={"Content-Security-Policy": DOCS_CSP},
        )

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers (no database, no thread)."""
        return {"status": "ok"}

    # One probe at a time, in its own thread: probes never queue behind requests, and a probe
    # stuck on a hung database (bounded by the connection's own timeouts) is not repeated.
    ready_limiter = anyio.CapacityLimiter(1)

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "database unavailable"}})
    async def readyz() -> dict[str, Any]:
        """Readiness: 200 only when the database answers within the connect timeout, else 503."""
        timeout = settings.db_connect_timeout_seconds
        try:
            with anyio.fail_after(timeout):
                await anyio.to_thread.run_sync(
                    database_answers, engine, limiter=ready_limiter, abandon_on_cancel=True
                )
        except TimeoutError:
            raise Unavailable() from None
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(_INDEX_HTML)

    console.install(app, settings)

    for router in (
        auth.router,
        reports.router,
        cases.router,
        cases.departments_router,
        cases.workflow_router,
        calendar.router,
        grids.router,
        grids.areas_router,
        taxonomy.router,
        stats.router,
        webhooks.router,
        warnings.router,
        events.router,
        attachments.router,
        worker.router,
        wechat.router,
        open311.router,
    ):
        app.include_router(router)
    return app


_INDEX_HTML = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>gridgov 网格化社会治理</title></head><body>
<h1>gridgov 网格化社会治理服务</h1>
<p>服务运行中。<a href="/console/">指挥中心工作台</a> · <a href="/docs">接口文档</a> ·
<a href="/openapi.json">OpenAPI</a> ·
<a href="/healthz">健康检查</a></p></body></html>"""


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers started by `gridgov serve`."""
    import os

    return create_app(scheduler=os.environ.get("GRIDGOV_SCHEDULER", "1") == "1")
