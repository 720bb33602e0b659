"""Application surface: migrations agree with the models, errors, health, offline docs."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app.migrate import schema_drift
from app.scheduler import start_scheduler, sweep_job


def test_models_and_migrations_agree(engine: Engine) -> None:
    assert schema_drift(engine) == []


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_unknown_route_is_json_404(client: TestClient) -> None:
    res = client.get("/v1/nothing-here")
    assert res.status_code == 404
    assert res.json()["error"] == "not_found"


def test_docs_are_served_offline(client: TestClient) -> None:
    html = client.get("/docs").text
    urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
    assert urls
    assert all(u.startswith("/") for u in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url
    spec = client.get("/openapi.json").json()
    assert "/v1/reports" in spec["paths"]


def test_scheduler_schedules_the_sweep_job_every_minute(client: TestClient) -> None:
    """The schedule only; what one run of `sweep_job` does is asserted in test_metrics.py
    (cases checked and marked overdue, duration counted) and test_resilience.py (an outage)."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    scheduler = start_scheduler(runtime)
    try:
        job = scheduler.get_job("sla_sweep")
        assert job is not None
        assert job.func is sweep_job
        assert list(job.args) == [runtime]
        assert job.trigger.interval.total_seconds() == 60
        assert (job.max_instances, job.coalesce) == (1, True)
    finally:
        scheduler.shutdown(wait=False)
