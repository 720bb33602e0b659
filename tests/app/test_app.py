"""Application surface: migrations agree with the models, errors, health, offline docs."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from app.migrate import schema_drift
from app.scheduler import start_scheduler, sweep_job
from tests.conftest import Api, new_client_id

GRID = "440604011001001"


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


def test_scheduler_schedules_a_sweep_every_minute_that_marks_due_cases(
    api: Api, demo_points: Any
) -> None:
    """The schedule, and what its job does when it runs: the case of the test's database
    that is past its deadline is marked red (other effects of `sweep_job`: test_metrics.py,
    an outage: test_resilience.py)."""
    lng, lat = demo_points(GRID)
    body = {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": "井盖丢失"}
    cid = api.post(f"gw{GRID}", "/v1/reports", body).json()["id"]
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    scheduler = start_scheduler(runtime)
    try:
        job = scheduler.get_job("sla_sweep")
        assert job is not None
        assert job.func is sweep_job
        assert list(job.args) == [runtime]
        assert job.trigger.interval.total_seconds() == 60
        assert (job.max_instances, job.coalesce) == (1, True)
        api.clock.advance(hours=7)  # 16:00 local: past the 15:00 deadline
        job.func(*job.args, **job.kwargs)  # one tick, run here rather than waited for
        case = api.get("dispatcher", f"/v1/cases/{cid}").json()
        # 井盖丢失 is urgent: its red card goes straight to the 镇街 (the catalogue's ladder).
        assert (case["warning_level"], case["escalation_level"]) == ("red", 2)
        assert [h["action"] for h in case["history"]] == ["report", "sla_overdue", "sla_escalated"]
    finally:
        scheduler.shutdown(wait=False)
