"""Per-stage limits on SQLite and PostGIS: 签收 within GRIDGOV_ACCEPT_LIMIT_WORKING_HOURS (2),
处置 by the catalogue, 核查 within GRIDGOV_VERIFY_LIMIT_WORKING_HOURS (8); the case shows each
running stage, the sweep warns and marks each stage red once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dispatch import service as dispatch_service
from dispatch.changes import CaseEvent, EventType
from dispatch.tasks import run_sweep
from grid.coords import wgs84_to_gcj02
from tests.conftest import Api, new_client_id

GRID = "440604011001001"


@pytest.fixture
def committed() -> Iterator[list[CaseEvent]]:
    seen: list[CaseEvent] = []
    remove = dispatch_service.add_event_hook(lambda _session, events: seen.extend(events))
    yield seen
    remove()


def _sweep(api: Api) -> dict[str, int]:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    return run_sweep(
        api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy
    )


def _stages(case: dict[str, Any]) -> list[tuple[str, str, str, float]]:
    return [
        (s["stage"], s["due_at"], s["warning_level"], s["remaining_working_hours"])
        for s in case["stages"]
    ]


def test_each_stage_has_its_limit_and_the_sweep_cards_it_once(
    api: Api, demo_points: Any, committed: list[CaseEvent]
) -> None:
    g_lng, g_lat = wgs84_to_gcj02(*demo_points(GRID))
    body = {"client_id": new_client_id(), "lat": g_lat, "lng": g_lng, "crs": "gcj02"}
    res = api.post(f"gw{GRID}", "/v1/reports", {**body, "description": "路口井盖丢失"})
    cid = res.json()["id"]
    path = f"/v1/cases/{cid}"
    # Reported at 09:00 local Tuesday: only the handling limit (4 working hours) runs.
    assert _stages(res.json()) == [("handle", "2026-11-24T07:00:00Z", "none", 4.0)]
    for action in ("register", "dispatch"):
        assert api.post("dispatcher", f"{path}/{action}", {}).status_code == 200
    case = api.get("dispatcher", path).json()
    assert _stages(case) == [
        ("accept", "2026-11-24T03:00:00Z", "none", 2.0),  # 11:00 local
        ("handle", "2026-11-24T07:00:00Z", "none", 4.0),
    ]
    committed.clear()
    api.clock.advance(hours=1)
    assert _sweep(api)["stage_warning"] == 0  # 10:00: below 80 % of the 2 hours
    api.clock.advance(minutes=40)  # 10:40 local: past 10:36
    counts = _sweep(api)
    assert (counts["stage_warning"], counts["stage_overdue"]) == (1, 0)
    api.clock.advance(minutes=25)  # 11:05 local: the unit has not accepted in time
    assert _sweep(api)["stage_overdue"] == 1
    assert _sweep(api)["checked"] == 0  # nothing more until the handling limit's yellow card
    case = api.get("dispatcher", path).json()
    assert case["warning_level"] == "none"  # the case's own limit is untouched
    assert [s[2] for s in _stages(case)] == ["red", "none"]
    assert _stages(case)[0][3] == pytest.approx(-5 / 60, abs=0.01)
    cards = [h for h in case["history"] if h["action"].startswith("stage_")]
    assert [(h["action"], h["data"]["stage"]) for h in cards] == [
        ("stage_warning", "accept"),
        ("stage_overdue", "accept"),
    ]
    events = [(e.type, e.data.get("stage")) for e in committed if e.case_id == cid]
    # The red card escalates to the 村居 (level 1), told after it, naming the stage.
    assert events == [
        (EventType.WARNING, "accept"),
        (EventType.OVERDUE, "accept"),
        (EventType.ESCALATED, "accept"),
    ]
    assert committed[-1].data["escalation"] == {"level": 1, "area_code": GRID[:12]}
    assert case["escalation_level"] == 1

    assert api.post("dept-cgj", f"{path}/accept", {}).status_code == 200
    assert [s[0] for s in _stages(api.get("dispatcher", path).json())] == ["handle"]
    api.clock.advance(minutes=5)  # 11:10 local
    res = api.post("dept-cgj", f"{path}/resolve", {"note": "已补装"})
    # 核查 within 8 working hours: 50 min + 3.5 h Tuesday, 3.5 h + 10 min Wednesday.
    assert _stages(res.json()) == [("verify", "2026-11-25T06:10:00Z", "none", 8.0)]
    api.clock.advance(days=1, hours=3)  # Wednesday 14:10 local
    assert _sweep(api)["stage_overdue"] == 1  # the yellow card's instant passed unswept
    case = api.get("dispatcher", path).json()
    assert [h["action"] for h in case["history"]][-1] == "stage_overdue"
    assert case["history"][-1]["data"]["stage"] == "verify"
    res = api.post(f"gw{GRID}", f"{path}/verify", {"passed": True})
    assert res.json()["stages"] == []
