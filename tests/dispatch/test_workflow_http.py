"""The closed loop through HTTP, on SQLite and on PostGIS: report → … → close, with SLA."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.main import create_app
from core.db import make_engine, session_scope
from core.settings import Settings
from dispatch import service as dispatch_service
from dispatch.tasks import run_sweep
from grid.coords import wgs84_to_gcj02
from tests.conftest import SECRET, Api, new_client_id

GRID = "440604011001001"  # 石湾镇街道, first village, first micro-grid
WORKER = f"gw{GRID}"


def _report(
    api: Api, point: Callable[[str], tuple[float, float]], *, grid: str = GRID, **extra: Any
) -> dict[str, Any]:
    lng, lat = point(grid)
    g_lng, g_lat = wgs84_to_gcj02(lng, lat)
    body = {
        "client_id": new_client_id(),
        "lat": g_lat,
        "lng": g_lng,
        "crs": "gcj02",
        "description": "石湾镇街道某路口井盖丢失，很危险",
        **extra,
    }
    res = api.post(f"gw{grid}", "/v1/reports", body)
    assert res.status_code == 201, res.text
    return res.json()


def test_report_is_placed_classified_routed_and_given_a_deadline(
    api: Api, demo_points: Any
) -> None:
    case = _report(api, demo_points)
    assert case["grid_code"] == GRID
    assert len(case["grid_code"]) == 15
    assert case["grid_rule"] == "inside"
    assert (case["category_code"], case["subcategory_code"]) == ("08", "0801")
    assert case["department_code"] == "CGJ"
    assert case["status"] == "reported"
    # 09:00 local on Tuesday 2026-11-24 + 4 working hours (lunch 12:00-14:00) → 15:00 local.
    assert case["time_limit"] == {"value": 4, "unit": "working_hours"}
    assert case["due_at"] == "2026-11-24T07:00:00Z"


def test_case_walks_the_whole_loop_with_history(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points)
    cid = case["id"]
    steps = [
        ("dispatcher", "register", {}),
        ("dispatcher", "dispatch", {}),
        ("dept-cgj", "accept", {}),
        ("dept-cgj", "resolve", {"note": "已补装井盖并设置警示"}),
        (WORKER, "verify", {"passed": True}),
        ("dispatcher", "close", {"reason": "核查通过"}),
    ]
    for who, action, body in steps:
        api.clock.advance(minutes=20)
        res = api.post(who, f"/v1/cases/{cid}/{action}", body)
        assert res.status_code == 200, (action, res.text)
    final = api.get("dispatcher", f"/v1/cases/{cid}").json()
    assert final["status"] == "closed"
    assert [h["action"] for h in final["history"]] == [
        "report",
        "register",
        "dispatch",
        "accept",
        "resolve",
        "verify",
        "close",
    ]
    assert [h["to_status"] for h in final["history"]][-1] == "closed"
    resolve = final["history"][4]
    assert resolve["actor_role"] == "department"
    assert resolve["data"]["note"] == "已补装井盖并设置警示"
    assert final["history"][-1]["reason"] == "核查通过"
    assert final["history"][0]["at"] < final["history"][-1]["at"]
    with session_scope(api.engine) as session:
        problems, _ = dispatch_service.verify_audit(session, key=SECRET)
    assert problems == []


@pytest.mark.parametrize(
    ("who", "action", "status", "code"),
    [
        # Its unit (routed at intake) but not dispatched yet: the guard is the status.
        ("dept-cgj", "accept", 409, "illegal_transition"),
        ("dispatcher", "dispatch", 409, "illegal_transition"),  # must be registered first
        ("dispatcher", "close", 409, "illegal_transition"),
        ("dispatcher", "resolve", 403, "not_permitted"),  # only the unit resolves
        (f"gw{GRID[:-3]}002", "verify", 403, "not_permitted"),  # another grid's worker
    ],
)
def test_illegal_or_foreign_steps_are_refused_and_change_nothing(
    api: Api, demo_points: Any, who: str, action: str, status: int, code: str
) -> None:
    case = _report(api, demo_points)
    res = api.post(who, f"/v1/cases/{case['id']}/{action}", {})
    assert (res.status_code, res.json()["error"]) == (status, code), res.text
    after = api.get("dispatcher", f"/v1/cases/{case['id']}").json()
    assert after["status"] == "reported"
    assert len(after["history"]) == 1


def test_another_department_cannot_act_on_the_case(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points)
    api.post("dispatcher", f"/v1/cases/{case['id']}/register", {})
    api.post("dispatcher", f"/v1/cases/{case['id']}/dispatch", {})
    res = api.post("dept-sthj", f"/v1/cases/{case['id']}/accept", {})
    assert res.status_code == 403
    assert res.json()["error"] == "not_permitted"
    assert api.get("dept-sthj", f"/v1/cases/{case['id']}").status_code == 404


def test_reason_is_required_to_reject_and_return(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points)
    res = api.post("dispatcher", f"/v1/cases/{case['id']}/reject", {})
    assert res.status_code == 422
    assert res.json()["error"] == "reason_required"
    res = api.post("dispatcher", f"/v1/cases/{case['id']}/reject", {"reason": "重复上报"})
    assert res.status_code == 200
    assert res.json()["status"] == "rejected"


def test_returned_case_restarts_clock_for_new_unit(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points)
    cid = case["id"]
    api.post("dispatcher", f"/v1/cases/{cid}/register", {})
    api.post("dispatcher", f"/v1/cases/{cid}/dispatch", {})
    api.clock.advance(hours=1)
    res = api.post("dept-cgj", f"/v1/cases/{cid}/return", {"reason": "非我单位职责"})
    assert res.status_code == 200
    assert res.json()["status"] == "registered"
    api.clock.advance(minutes=30)
    res = api.post("dispatcher", f"/v1/cases/{cid}/dispatch", {"department_code": "ZJJ"})
    body = res.json()
    assert body["department_code"] == "ZJJ"
    assert body["return_count"] == 1
    # The new unit gets the full 4 working hours from now (10:30 local → 16:30 local).
    assert body["due_at"] == "2026-11-24T08:30:00Z"
    assert api.post("dept-cgj", f"/v1/cases/{cid}/accept", {}).status_code == 403
    assert api.post("dept-zjj", f"/v1/cases/{cid}/accept", {}).status_code == 200


def test_failed_check_sends_case_back_to_the_unit(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points)
    cid = case["id"]
    for who, action, body in [
        ("dispatcher", "register", {}),
        ("dispatcher", "dispatch", {}),
        ("dept-cgj", "accept", {}),
        ("dept-cgj", "resolve", {"note": "已处理"}),
    ]:
        assert api.post(who, f"/v1/cases/{cid}/{action}", body).status_code == 200
    res = api.post(WORKER, f"/v1/cases/{cid}/verify", {"passed": False})
    assert res.status_code == 422
    res = api.post(WORKER, f"/v1/cases/{cid}/verify", {"passed": False, "reason": "井盖仍缺失"})
    assert res.status_code == 200
    assert res.json()["status"] == "dispatched"
    assert res.json()["redo_count"] == 1


def test_suspended_case_clock_pauses(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points)
    cid = case["id"]
    api.post("dispatcher", f"/v1/cases/{cid}/register", {})
    api.post("dispatcher", f"/v1/cases/{cid}/dispatch", {})
    due_before = api.get("dispatcher", f"/v1/cases/{cid}").json()["due_at"]
    api.post("dispatcher", f"/v1/cases/{cid}/suspend", {"reason": "需配合市政工程"})
    api.clock.advance(days=1)  # Wednesday 09:00 local: 7 working hours pass while suspended
    res = api.post("dispatcher", f"/v1/cases/{cid}/resume", {})
    assert res.status_code == 200
    assert res.json()["status"] == "dispatched"
    assert due_before == "2026-11-24T07:00:00Z"
    assert res.json()["due_at"] == "2026-11-25T07:00:00Z"


# 暴露垃圾 (0601): a normal case, 4 working hours, climbing the normal ladder (1, 2, 3).
NORMAL_REPORT = "石湾镇街道某路口暴露垃圾无人清理"


def test_sweep_warns_then_marks_red_and_escalates(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points, description=NORMAL_REPORT)
    cid = case["id"]
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]

    def sweep() -> dict[str, Any]:
        run_sweep(api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy)
        return api.get("dispatcher", f"/v1/cases/{cid}").json()

    assert sweep()["warning_level"] == "none"
    api.clock.advance(hours=5, minutes=15)  # 14:15 local: 3.25 of 4 working hours used (> 80%)
    state = sweep()
    assert (state["warning_level"], state["escalation_level"]) == ("yellow", 0)
    api.clock.advance(minutes=50)  # 15:05 local: past the 15:00 deadline
    state = sweep()
    assert (state["warning_level"], state["escalation_level"]) == ("red", 1)
    api.clock.advance(hours=3)  # 18:05: 2.5 working hours past due (> 50% of the limit)
    state = sweep()
    assert state["escalation_level"] == 2
    api.clock.advance(days=1)
    state = sweep()
    assert state["escalation_level"] == 3
    actions = [h["action"] for h in state["history"]]
    assert actions == ["report", "sla_warning", "sla_overdue", "sla_escalated", "sla_escalated"]
    # Each escalation names its level and the area it reached: 村居, 镇街, then the district.
    assert [h["data"]["escalation"] for h in state["history"][2:]] == [
        {"level": 1, "area_code": GRID[:12]},
        {"level": 2, "area_code": GRID[:9]},
        {"level": 3, "area_code": GRID[:6]},
    ]
    # Sweeping again changes nothing.
    assert len(sweep()["history"]) == len(actions)


def test_sweep_reads_only_due_cases(api: Api, demo_points: Any) -> None:
    """The test's database holds this one case: a sweep checks it only at its SLA instants."""
    case = _report(api, demo_points, description=NORMAL_REPORT)
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]

    def sweep() -> dict[str, int]:
        return run_sweep(
            api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy
        )

    with session_scope(api.engine) as session:
        next_check = session.execute(
            text("SELECT next_check_at FROM gg_case WHERE id = :id"), {"id": case["id"]}
        ).scalar()
    assert next_check is not None
    quiet = dict.fromkeys(dispatch_service.SWEEP_COUNTS, 0)
    assert set(quiet) >= {"checked", "sla_warning", "sla_overdue", "sla_escalated"}
    assert sweep() == quiet  # 09:00 local: nothing due before the yellow card at 14:12
    api.clock.advance(hours=5, minutes=15)  # 14:15 local
    assert sweep() == {**quiet, "checked": 1, "sla_warning": 1}
    assert sweep() == quiet  # the next instant is the deadline, 15:00
    api.clock.advance(minutes=50)
    assert sweep() == {**quiet, "checked": 1, "sla_overdue": 1}


def test_closed_case_leaves_the_sweep(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points)
    api.post("dispatcher", f"/v1/cases/{case['id']}/reject", {"reason": "不属于治理事项"})
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    api.clock.advance(days=10)
    counts = run_sweep(
        api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy
    )
    assert counts["checked"] == 0  # the only case of the test's database is no longer due
    state = api.get("dispatcher", f"/v1/cases/{case['id']}").json()
    assert state["warning_level"] == "none"
    assert len(state["history"]) == 2


def test_two_dispatchers_clicking_at_once_only_one_wins(
    api: Api, settings: Settings, demo_points: Any
) -> None:
    """Two dispatchers on two server processes (each its own app, engine and connections)
    register one case at the same instant, both from the version they saw: one wins, the
    other is told the case changed meanwhile, and the history has one registration."""
    case = _report(api, demo_points)
    path = f"/v1/cases/{case['id']}/register"
    body = {"expected_version": case["version"]}
    headers = {who: api.headers(who) for who in ("dispatcher", "admin")}
    go = threading.Barrier(2)
    answers: dict[str, tuple[int, str | None]] = {}

    def click(who: str) -> None:
        engine = make_engine(settings=settings)
        app = create_app(settings=settings, engine=engine, clock=api.clock)
        try:
            with TestClient(app, raise_server_exceptions=False) as client:
                assert client.get("/readyz").status_code == 200  # connected before the click
                go.wait(timeout=30)
                res = client.post(path, json=body, headers=headers[who])
                answers[who] = (res.status_code, res.json().get("error"))
        finally:
            engine.dispose()

    threads = [threading.Thread(target=click, args=(who,)) for who in headers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers.values(), key=str) == [(200, None), (409, "stale_case")], answers
    history = api.get("dispatcher", f"/v1/cases/{case['id']}").json()["history"]
    assert [h["action"] for h in history] == ["report", "register"]


def test_cases_are_scoped_by_role_and_place(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points)
    other = f"gw{GRID[:-3]}002"
    assert api.get(WORKER, f"/v1/cases/{case['id']}").status_code == 200
    assert api.get(other, f"/v1/cases/{case['id']}").status_code == 404
    assert api.get(other, "/v1/cases").json() == {"items": [], "total": 0}
    # A department sees a case only once it is dispatched to it.
    assert api.get("dept-cgj", f"/v1/cases/{case['id']}").status_code == 404
    api.post("dispatcher", f"/v1/cases/{case['id']}/register", {})
    api.post("dispatcher", f"/v1/cases/{case['id']}/dispatch", {})
    assert api.get("dept-cgj", f"/v1/cases/{case['id']}").status_code == 200
    # The test's database holds this one case.
    for who in ("dept-cgj", "dispatcher", WORKER):
        assert [c["id"] for c in api.get(who, "/v1/cases").json()["items"]] == [case["id"]]
    assert api.get("dept-sthj", "/v1/cases").json()["total"] == 0


def test_history_names_are_masked_for_units(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points)
    api.post("dispatcher", f"/v1/cases/{case['id']}/register", {})
    api.post("dispatcher", f"/v1/cases/{case['id']}/dispatch", {})
    seen = api.get("dept-cgj", f"/v1/cases/{case['id']}").json()["history"]
    reporter = seen[0]["actor"]
    full = api.get("dispatcher", f"/v1/cases/{case['id']}").json()["history"][0]["actor"]
    assert len(full) > 1
    assert "*" not in full
    assert reporter == full[0] + "*" * (len(full) - 1)  # 张* / 欧阳**: the first character


def test_tampering_with_history_is_detected(api: Api, demo_points: Any) -> None:
    case = _report(api, demo_points)
    api.post("dispatcher", f"/v1/cases/{case['id']}/register", {})
    with session_scope(api.engine) as session:
        session.execute(
            text("UPDATE case_history SET reason = 'edited' WHERE case_id = :id AND seq = 2"),
            {"id": case["id"]},
        )
    with session_scope(api.engine) as session:
        problems, _ = dispatch_service.verify_audit(session, key=SECRET)
    assert problems  # the test's database holds this one case: every problem is about it
    assert {p.case_id for p in problems} == {case["id"]}
    assert problems[0].seq == 2
