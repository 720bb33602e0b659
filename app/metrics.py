"""Prometheus metrics for operators (`GET /metrics`): requests, reports, open cases, the sweep.

Each app has its own registry (several apps in one test process do not collide). Numbers are
per process: with `gridgov serve --workers N` each worker counts its own requests, reports and
sweeps, and a scrape reaches whichever worker answers. prometheus-client's multiprocess mode
(shared files under PROMETHEUS_MULTIPROC_DIR) is out of scope for now; run one worker per
scrape target, or read the per-process series as samples. The open-case gauge is read from the
database at scrape time, so it is the same whichever worker answers.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Final

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.clock import Clock, utcnow
from core.db import database_trouble, reader
from core.errors import Unauthorized
from core.settings import Settings
from dispatch.models import Case, WarningLevel
from dispatch.workflow import OPEN_STATUSES
from notify.lag import outbox_state
from notify.models import DeliveryStatus

log = logging.getLogger("gridgov.metrics")

# An API answers in milliseconds; anything past 10 s has already failed someone.
REQUEST_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SWEEP_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SWEEP_OUTCOMES: Final = ("checked", "sla_warning", "sla_overdue", "sla_escalated")
SLA_STATES: Final[Mapping[str, str]] = {
    WarningLevel.NONE.value: "ok",
    WarningLevel.YELLOW.value: "warning",  # 黄牌
    WarningLevel.RED.value: "overdue",  # 红牌
}
# Any other method a client invents is counted as one label value (bounded cardinality).
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED: Final = "<unmatched>"  # the route label of a path no route matches (404)


def open_cases_by_sla_state(engine: Engine) -> dict[tuple[str, str], int]:
    """Open cases by (status, SLA state), in one GROUP BY under the statement timeout."""
    query = (
        select(col(Case.status), col(Case.warning_level), func.count())
        .where(col(Case.status).in_(sorted(s.value for s in OPEN_STATUSES)))
        .group_by(col(Case.status), col(Case.warning_level))
    )
    counts: dict[tuple[str, str], int] = {}
    with reader(engine).connect() as conn:
        for status, level, n in conn.execute(query):
            state = SLA_STATES.get(level)
            if state is not None:
                counts[(status, state)] = counts.get((status, state), 0) + int(n)
    return counts


class OpenCasesCollector(Collector):
    """`gridgov_open_cases{status,sla_state}`, read at scrape time; absent if the database fails."""

    NAME: Final = "gridgov_open_cases"
    HELP: Final = "Open cases (the SLA clock runs) by status and SLA state (ok/warning/overdue)"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.NAME, self.HELP, labels=["status", "sla_state"])

    def describe(self) -> Iterable[Metric]:
        # Lets the registry check names without running the query at registration.
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        try:
            counts = open_cases_by_sla_state(self.engine)
        except Exception as exc:  # one family lost, never the whole scrape
            trouble = database_trouble(exc)
            if trouble is None:
                log.exception("open cases left out of the metrics")
            else:
                log.warning("open cases left out of the metrics (%s: %s)", trouble.code, exc)
            return []
        family = self._family()
        for status in sorted(s.value for s in OPEN_STATUSES):
            for state in SLA_STATES.values():  # zeros too: absent means "could not read"
                family.add_metric([status, state], counts.get((status, state), 0))
        return [family]


class OutboxCollector(Collector):
    """`gridgov_outbox_deliveries{status}` and `gridgov_outbox_lag_seconds` (the age of the oldest
    due, undelivered webhook delivery), read at scrape time; absent if the database fails."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "gridgov_outbox_deliveries",
                "Webhook deliveries by status (pending, delivered, failed)",
                labels=["status"],
            ),
            GaugeMetricFamily(
                "gridgov_outbox_lag_seconds",
                "How long the oldest due webhook delivery has waited (0: none due)",
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        try:
            counts, lag = outbox_state(self.engine, now=self.clock())
        except Exception as exc:  # one family lost, never the whole scrape
            trouble = database_trouble(exc)
            if trouble is None:
                log.exception("outbox left out of the metrics")
            else:
                log.warning("outbox left out of the metrics (%s: %s)", trouble.code, exc)
            return []
        deliveries, lag_family = self._families()
        for status in DeliveryStatus:
            deliveries.add_metric([status.value], counts.get(status.value, 0))
        lag_family.add_metric([], lag)
        return [deliveries, lag_family]


class Metrics:
    """One process's instruments, in a registry of their own."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "gridgov_http_request_duration_seconds",
            "HTTP requests by method, route template and status; _count is the request count",
            ["method", "route", "status"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.reports = Counter(
            "gridgov_reports",
            "Reports that became a new case, by channel (a resent client_id is not counted)",
            ["channel"],
            registry=self.registry,
        )
        self.sweep_duration = Histogram(
            "gridgov_sweep_duration_seconds",
            "Completed SLA sweeps of this process: how long each took",
            buckets=SWEEP_BUCKETS,
            registry=self.registry,
        )
        self.sweep_cases = Counter(
            "gridgov_sweep_cases",
            "Cases the SLA sweep checked, and the warnings, overdues and escalations it raised",
            ["outcome"],
            registry=self.registry,
        )
        self.sweep_failures = Counter(
            "gridgov_sweep_failures",
            "SLA sweeps that failed (database down, too slow or busy, or a bug)",
            registry=self.registry,
        )
        for outcome in SWEEP_OUTCOMES:
            self.sweep_cases.labels(outcome)
        self.registry.register(OpenCasesCollector(engine))
        self.registry.register(OutboxCollector(engine, clock))
        # (method, route, status) → the histogram's child: one dict read per request.
        self._children: dict[tuple[str, str, int], Histogram] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, self.requests.labels(method, route, str(status)))
        child.observe(seconds)

    def report_filed(self, channel: str) -> None:
        self.reports.labels(channel).inc()

    def sweep_done(self, totals: Mapping[str, int], *, seconds: float) -> None:
        self.sweep_duration.observe(seconds)
        for outcome in SWEEP_OUTCOMES:
            self.sweep_cases.labels(outcome).inc(totals.get(outcome, 0))

    def sweep_failed(self) -> None:
        self.sweep_failures.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Times every HTTP request and counts it by method, route template and status (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes becomes a 500 outside this middleware

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router records the matched route in the (shared) scope: its template, never
            # the raw path, so ids do not become label values.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.observe_request(method, route, status, time.perf_counter() - started)


def install_metrics(app: FastAPI, *, metrics: Metrics, settings: Settings) -> None:
    """Serve `GET /metrics` and count requests, unless metrics are disabled in the settings.

    Call it after every other middleware is added: it then wraps them (413s and 415s count).
    """
    if not settings.metrics_enabled:
        return
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    token = settings.metrics_token or None

    # Not a JSON operation: kept out of the OpenAPI schema. A plain def: the scrape's query
    # runs on a worker thread, not in the event loop.
    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        if token is not None and not _bearer_matches(request, token):
            raise Unauthorized()
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8"), token.encode("utf-8")
    )
