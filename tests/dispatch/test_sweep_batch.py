"""The sweep writes a batch of due cases in one statement (dispatch.clock._write_swept) on SQLite
and PostGIS: every card lands on its case once, the audit log still verifies, and the
optimistic lock moves on as if the unit of work had written each case."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, col

from dispatch.audit_check import audit_reader, verify_audit
from dispatch.models import Case, CaseHistory
from dispatch.tasks import run_sweep
from grid.coords import wgs84_to_gcj02
from tests.conftest import Api, new_client_id

GRID = "440604011001001"


def _dispatched_case(api: Api, demo_points: Any, description: str) -> int:
    g_lng, g_lat = wgs84_to_gcj02(*demo_points(GRID))
    body = {"client_id": new_client_id(), "lat": g_lat, "lng": g_lng, "crs": "gcj02"}
    res = api.post(f"gw{GRID}", "/v1/reports", {**body, "description": description})
    case_id: int = res.json()["id"]
    for action in ("register", "dispatch"):
        assert api.post("dispatcher", f"/v1/cases/{case_id}/{action}", {}).status_code == 200
    return case_id


def _sweep(api: Api, batch: int) -> dict[str, int]:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    return run_sweep(
        api.engine,
        now=api.clock.now,
        calendars=runtime.calendars,
        policy=runtime.policy,
        batch=batch,
    )


def _versions(api: Api, ids: list[int]) -> dict[int, int]:
    with Session(api.engine) as session:
        rows = session.execute(select(col(Case.id), col(Case.version)).where(col(Case.id).in_(ids)))
        return dict(rows.tuples().all())


def test_a_batched_sweep_cards_every_case_once_and_the_log_still_verifies(
    api: Api, demo_points: Any
) -> None:
    ids = [_dispatched_case(api, demo_points, f"路口井盖丢失 {n}") for n in range(5)]
    before = _versions(api, ids)
    # Dispatched at 09:00 local: the 签收 stage's yellow card comes at 80 % of its 2 working
    # hours (10:36); three batches of 2, 2 and 1 cases.
    api.clock.advance(hours=1, minutes=40)
    counts = _sweep(api, batch=2)
    assert counts["checked"] == 5
    assert counts["stage_warning"] == 5
    assert _versions(api, ids) == {case_id: before[case_id] + 1 for case_id in ids}
    for case_id in ids:
        case = api.get("dispatcher", f"/v1/cases/{case_id}").json()
        assert [s["warning_level"] for s in case["stages"] if s["stage"] == "accept"] == ["yellow"]
        assert [h["action"] for h in case["history"]][-1] == "stage_warning"
    assert _sweep(api, batch=2)["checked"] == 0  # next_check_at moved on: nothing due now
    with Session(api.engine) as session:
        warnings = session.execute(
            select(func.count())
            .select_from(CaseHistory)
            .where(col(CaseHistory.action) == "stage_warning")
        ).scalar_one()
    assert warnings == 5
    settings = api.client.app.state.runtime.settings  # type: ignore[attr-defined]
    with Session(audit_reader(api.engine)) as session:
        problems, cases = verify_audit(session, key=settings.secret_key)
    assert problems == []
    assert cases == 5


def test_a_case_read_before_the_sweep_cannot_be_written_over_it(api: Api, demo_points: Any) -> None:
    case_id = _dispatched_case(api, demo_points, "路口井盖丢失")
    with Session(api.engine) as session:
        case = session.get(Case, case_id)
        assert case is not None
    api.clock.advance(hours=1, minutes=40)
    assert _sweep(api, batch=500)["stage_warning"] == 1
    case.description = "改过的描述"  # a write based on what was read before the sweep
    with Session(api.engine) as stale:
        stale.add(case)
        with pytest.raises(StaleDataError):
            stale.commit()
