"""`GET /metrics`: Prometheus text of requests, reports, open cases and the sweep."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app.main import create_app
from app.metrics import UNMATCHED
from app.scheduler import sweep_job
from core.db import make_engine
from core.settings import Settings
from dispatch.models import Case
from tests.conftest import SECRET, Api, FakeClock, OwnApp, new_client_id

GRID = "440604010001001"
WORKER = f"gw{GRID}"
REQUESTS = "gridgov_http_request_duration_seconds"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **kw: Any) -> Samples:
    """Every sample of `/metrics`, parsed by prometheus_client's own parser."""
    res = client.get("/metrics", **kw)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(res.text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def report_body(point: Any) -> dict[str, Any]:
    lng, lat = point(GRID)
    return {
        "client_id": new_client_id(),
        "lat": lat,
        "lng": lng,
        "crs": "wgs84",
        "description": "小区门口垃圾堆积很多天没人清理，臭气熏天",
    }


def test_requests_are_counted_by_route_template_and_status(api: Api, demo_points: Any) -> None:
    case_id = api.post(WORKER, "/v1/reports", report_body(demo_points)).json()["id"]
    before = scrape(api.client)
    assert api.get("dispatcher", f"/v1/cases/{case_id}").status_code == 200
    assert api.get("dispatcher", "/v1/cases/999999").status_code == 404
    assert api.client.get("/no/such/path").status_code == 404
    after = scrape(api.client)

    def delta(route: str, status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        return sample(after, f"{REQUESTS}_count", **labels) - sample(
            before, f"{REQUESTS}_count", **labels
        )

    assert delta("/v1/cases/{case_id}", "200") == 1
    assert delta("/v1/cases/{case_id}", "404") == 1
    assert delta(UNMATCHED, "404") == 1
    routes = {dict(labels).get("route") for name, labels in after if name.startswith(REQUESTS)}
    # Templates only: neither the case's id nor the unknown path became a label value.
    assert routes == {"/v1/reports", "/v1/cases/{case_id}", "/metrics", UNMATCHED}


def test_request_latency_lands_in_api_buckets(client: TestClient) -> None:
    client.get("/healthz")
    samples = scrape(client)
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    bounds = {
        dict(lab)["le"]
        for name, lab in samples
        if name == f"{REQUESTS}_bucket" and dict(lab).get("route") == "/healthz"
    }
    assert {"0.005", "10.0", "+Inf"} <= bounds
    count = sample(samples, f"{REQUESTS}_count", **labels)
    assert count >= 1
    assert sample(samples, f"{REQUESTS}_bucket", le="+Inf", **labels) == count
    assert sample(samples, f"{REQUESTS}_sum", **labels) > 0


def test_new_reports_are_counted_by_channel_and_resends_are_not(api: Api, demo_points: Any) -> None:
    before = scrape(api.client)
    body = report_body(demo_points)
    first = api.post(WORKER, "/v1/reports", body)
    assert api.post(WORKER, "/v1/reports", body).status_code == 200  # a resend: same case
    by_dispatcher = api.post("dispatcher", "/v1/reports", report_body(demo_points))
    batch = api.post(
        WORKER,
        "/v1/reports/batch",
        {"reports": [report_body(demo_points), report_body(demo_points), {"lat": 1}]},
    )
    assert [r["status"] for r in batch.json()["results"]] == [201, 201, 422]
    after = scrape(api.client)
    worker_channel = first.json()["channel"]
    dispatcher_channel = by_dispatcher.json()["channel"]
    assert (worker_channel, dispatcher_channel) == ("grid_worker", "dispatcher")

    def delta(channel: str) -> float:
        name = "gridgov_reports_total"
        return sample(after, name, channel=channel) - sample(before, name, channel=channel)

    assert delta(worker_channel) == 3  # one single report and two batch items
    assert delta(dispatcher_channel) == 1


def _open_cases_in_database(engine: Engine) -> dict[tuple[str, str], int]:
    states = {"none": "ok", "yellow": "warning", "red": "overdue"}
    opened = ["reported", "registered", "dispatched", "accepted"]
    with Session(engine) as s:
        rows = s.execute(
            select(col(Case.status), col(Case.warning_level), func.count())
            .where(col(Case.status).in_(opened))
            .group_by(col(Case.status), col(Case.warning_level))
        ).all()
    counts = {(status, state): 0 for status in opened for state in states.values()}
    for status, level, n in rows:
        counts[(status, states[level])] += n
    return counts


def test_open_cases_by_sla_state_match_the_database(api: Api, demo_points: Any) -> None:
    for _ in range(3):
        assert api.post(WORKER, "/v1/reports", report_body(demo_points)).status_code == 201
    samples = scrape(api.client)
    shown = {
        (dict(labels)["status"], dict(labels)["sla_state"]): value
        for (name, labels), value in samples.items()
        if name == "gridgov_open_cases"
    }
    assert shown == _open_cases_in_database(api.engine)
    assert sum(v for (_, state), v in shown.items() if state == "ok") >= 3


def test_sweep_duration_and_cases_are_counted_after_a_sweep(
    own_app: OwnApp, demo_points: Any
) -> None:
    api = own_app.api
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    assert api.post(WORKER, "/v1/reports", report_body(demo_points)).status_code == 201
    due = _open_cases_in_database(api.engine)
    assert sum(due.values()) == 1  # the copy of the seed holds no other open case
    before = scrape(api.client)
    api.clock.advance(days=90)  # far past any time limit
    sweep_job(runtime)
    after = scrape(api.client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("gridgov_sweep_duration_seconds_count") == 1
    assert delta("gridgov_sweep_duration_seconds_sum") > 0
    assert delta("gridgov_sweep_cases_total", outcome="checked") == 1
    assert delta("gridgov_sweep_cases_total", outcome="sla_overdue") == 1
    assert delta("gridgov_sweep_failures_total") == 0
    assert sample(after, "gridgov_open_cases", status="reported", sla_state="overdue") == 1
    assert sample(after, "gridgov_open_cases", status="reported", sla_state="ok") == 0


@pytest.fixture
def unreachable_app() -> Iterator[TestClient]:
    """An app whose database refuses every connection (nothing listens on port 1)."""
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    settings = Settings(database_url=url, secret_key=SECRET, db_connect_timeout_seconds=2)
    engine = make_engine(url, settings=settings)
    app = create_app(settings=settings, engine=engine, clock=FakeClock())
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
    finally:
        engine.dispose()


def test_database_failure_at_scrape_omits_only_the_open_cases(
    unreachable_app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable_app.get("/healthz")
    with caplog.at_level(logging.WARNING, logger="gridgov.metrics"):
        samples = scrape(unreachable_app)
    names = {name for name, _ in samples}
    assert not any(n.startswith("gridgov_open_cases") for n in names)
    assert f"{REQUESTS}_count" in names
    assert "open cases left out of the metrics (unavailable" in caplog.text


def test_failed_sweep_is_counted(unreachable_app: TestClient) -> None:
    runtime = unreachable_app.app.state.runtime  # type: ignore[attr-defined]
    sweep_job(runtime)
    samples = scrape(unreachable_app)
    assert sample(samples, "gridgov_sweep_failures_total") == 1
    assert sample(samples, "gridgov_sweep_duration_seconds_count") == 0


def test_each_app_counts_in_its_own_registry(settings: Settings, engine: Engine) -> None:
    apps = [create_app(settings=settings, engine=engine, clock=FakeClock()) for _ in range(2)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as other:
        for _ in range(3):
            one.get("/healthz")
        counts = [
            sample(scrape(c), f"{REQUESTS}_count", method="GET", route="/healthz", status="200")
            for c in (one, other)
        ]
    assert counts == [3, 0]


def test_metrics_token_requires_the_bearer(settings: Settings, engine: Engine) -> None:
    guarded = settings.model_copy(update={"metrics_token": "scrape-me-7f3a"})
    with TestClient(create_app(settings=guarded, engine=engine, clock=FakeClock())) as client:
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert (missing.status_code, wrong.status_code) == (401, 401)
        assert missing.json()["error"] == "unauthorized"
        scrape(client, headers={"Authorization": "Bearer scrape-me-7f3a"})


def test_metrics_can_be_disabled(settings: Settings, engine: Engine) -> None:
    off = settings.model_copy(update={"metrics_enabled": False})
    with TestClient(create_app(settings=off, engine=engine, clock=FakeClock())) as client:
        assert client.get("/metrics").status_code == 404


def test_metrics_is_not_an_operation_of_the_openapi_schema(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_sweep_counts_start_at_zero_for_every_outcome(client: TestClient) -> None:
    samples = scrape(client)
    for outcome in ("checked", "sla_warning", "sla_overdue", "sla_escalated"):
        assert ("gridgov_sweep_cases_total", frozenset({("outcome", outcome)})) in samples
