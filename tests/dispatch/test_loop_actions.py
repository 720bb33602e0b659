"""The rest of the loop through HTTP, on SQLite and PostGIS: 延期 asked by the unit and answered
by the command centre, 回访 and the reopen it allows, 改类."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grid.coords import wgs84_to_gcj02
from tests.conftest import Api, new_client_id

GRID = "440604011001001"
WORKER = f"gw{GRID}"


def _case(api: Api, point: Callable[[str], tuple[float, float]], *steps: str) -> int:
    """A manhole report (城管局, 4 working hours from 09:00 local Tuesday: due 15:00) taken
    through the given steps by their usual parties."""
    g_lng, g_lat = wgs84_to_gcj02(*point(GRID))
    body = {
        "client_id": new_client_id(),
        "lat": g_lat,
        "lng": g_lng,
        "crs": "gcj02",
        "description": "路口井盖丢失，很危险",
    }
    res = api.post(WORKER, "/v1/reports", body)
    assert res.status_code == 201, res.text
    case_id = int(res.json()["id"])
    party = {"accept": "dept-cgj", "resolve": "dept-cgj", "verify": WORKER}
    fields: dict[str, dict[str, Any]] = {"resolve": {"note": "已补装"}, "verify": {"passed": True}}
    for step in steps:
        res = api.post(
            party.get(step, "dispatcher"), f"/v1/cases/{case_id}/{step}", fields.get(step)
        )
        assert res.status_code == 200, (step, res.text)
    return case_id


def _error(res: Any) -> tuple[int, str]:
    return res.status_code, res.json().get("error")


def test_an_approved_request_moves_the_deadline_in_working_time(api: Api, demo_points: Any) -> None:
    cid = _case(api, demo_points, "register", "dispatch", "accept")
    path = f"/v1/cases/{cid}"
    before = api.get("dispatcher", path).json()
    assert before["due_at"] == "2026-11-24T07:00:00Z"  # 15:00 local
    assert "approve_extension" not in before["actions"]
    res = api.post("dispatcher", f"{path}/approve_extension", {})
    assert _error(res) == (409, "no_extension_request")

    res = api.post("dept-cgj", f"{path}/request_extension", {"reason": "需要协调", "hours": 8})
    assert res.status_code == 200, res.text
    asked = res.json()
    assert asked["extension_request_hours"] == 8
    assert asked["due_at"] == before["due_at"]  # nothing moves until the centre says yes
    assert asked["history"][-1]["data"] == {"hours": 8}
    res = api.post("dept-cgj", f"{path}/request_extension", {"reason": "再次", "hours": 2})
    assert _error(res) == (409, "extension_pending")
    res = api.post("dept-cgj", f"{path}/approve_extension", {})
    assert _error(res) == (403, "not_permitted")
    listed = api.get("dispatcher", path).json()["actions"]
    assert {"approve_extension", "deny_extension"} <= set(listed)

    res = api.post("dispatcher", f"{path}/approve_extension", {})
    assert res.status_code == 200, res.text
    granted = res.json()
    # 15:00 + 8 working hours: 2.5 h on Tuesday, 3.5 h Wednesday morning, 2 h from 14:00.
    assert granted["due_at"] == "2026-11-25T08:00:00Z"  # 16:00 local Wednesday
    assert (granted["extension_count"], granted["extension_request_hours"]) == (1, None)
    assert granted["history"][-1]["data"] == {"hours": 8, "count": 1}
    assert "approve_extension" not in granted["actions"]


def test_a_denied_request_changes_no_deadline_and_approvals_are_limited(
    api: Api, demo_points: Any
) -> None:
    cid = _case(api, demo_points, "register", "dispatch")
    path = f"/v1/cases/{cid}"
    due = api.get("dispatcher", path).json()["due_at"]

    def ask(hours: Any) -> Any:
        return api.post("dept-cgj", f"{path}/request_extension", {"reason": "配件", "hours": hours})

    assert ask(3).status_code == 200
    res = api.post("dispatcher", f"{path}/deny_extension", {})
    assert _error(res) == (422, "reason_required")
    res = api.post("dispatcher", f"{path}/deny_extension", {"reason": "理由不足"})
    assert res.status_code == 200, res.text
    denied = res.json()
    assert (denied["due_at"], denied["extension_count"]) == (due, 0)
    assert denied["extension_request_hours"] is None
    assert denied["history"][-1]["data"] == {"hours": 3}

    assert _error(ask(0)) == (422, "invalid_hours")
    assert _error(ask(177)) == (422, "invalid_hours")
    assert _error(ask(1.5)) == (422, "validation_error")
    res = api.post("dept-cgj", f"{path}/request_extension", {"reason": "配件"})
    assert _error(res) == (422, "invalid_hours")

    # The centre's own `extend` and approvals share the limit (GRIDGOV_MAX_EXTENSIONS = 2).
    res = api.post("dispatcher", f"{path}/extend", {"reason": "协调", "amount": 1.0})
    assert res.status_code == 200, res.text
    assert ask(2).status_code == 200
    assert api.post("dispatcher", f"{path}/approve_extension", {}).status_code == 200
    assert _error(ask(2)) == (409, "extension_limit")
    case = api.get("dispatcher", path).json()
    assert (case["extension_count"], case["extension_request_hours"]) == (2, None)


def test_a_dissatisfied_visit_allows_reopen_within_the_window_only(
    api: Api, demo_points: Any
) -> None:
    steps = ("register", "dispatch", "accept", "resolve", "verify", "close")
    happy, unhappy, late = (_case(api, demo_points, *steps) for _ in range(3))

    res = api.post("dispatcher", f"/v1/cases/{happy}/visit", {"note": "已回访"})
    assert _error(res) == (422, "satisfaction_required")
    res = api.post("dispatcher", f"/v1/cases/{happy}/visit", {"satisfaction": "great"})
    assert _error(res) == (422, "validation_error")
    res = api.post("dept-cgj", f"/v1/cases/{happy}/visit", {"satisfaction": "satisfied"})
    assert _error(res) == (403, "not_permitted")
    res = api.post("dispatcher", f"/v1/cases/{happy}/visit", {"satisfaction": "satisfied"})
    assert res.status_code == 200, res.text
    visited = res.json()
    assert (visited["status"], visited["visit_satisfaction"]) == ("closed", "satisfied")
    assert visited["reopen_until"] is None
    assert "reopen" not in visited["actions"]
    res = api.post("dispatcher", f"/v1/cases/{happy}/reopen", {"reason": "想重办"})
    assert _error(res) == (409, "reopen_refused")
    assert api.get("dispatcher", f"/v1/cases/{happy}").json()["status"] == "closed"

    for cid in (unhappy, late):
        body = {"satisfaction": "dissatisfied", "note": "井盖仍松动"}
        res = api.post("dispatcher", f"/v1/cases/{cid}/visit", body)
        assert res.status_code == 200, res.text
        assert res.json()["history"][-1]["data"]["satisfaction"] == "dissatisfied"
        assert "reopen" in res.json()["actions"]
    api.clock.advance(days=6, hours=23)
    res = api.post("dispatcher", f"/v1/cases/{unhappy}/reopen", {"reason": "居民不满意"})
    assert res.status_code == 200, res.text
    assert (res.json()["status"], res.json()["redo_count"]) == ("dispatched", 1)
    api.clock.advance(hours=2)  # past the 7 days (GRIDGOV_REOPEN_AFTER_VISIT_DAYS)
    assert "reopen" not in api.get("dispatcher", f"/v1/cases/{late}").json()["actions"]
    res = api.post("dispatcher", f"/v1/cases/{late}/reopen", {"reason": "居民不满意"})
    assert _error(res) == (409, "reopen_refused")
    assert "7" in res.json()["detail"]


def test_recategorize_moves_the_case_to_the_new_unit_and_limit(api: Api, demo_points: Any) -> None:
    cid = _case(api, demo_points, "register", "dispatch", "accept")
    path = f"/v1/cases/{cid}"
    res = api.post("dispatcher", f"{path}/recategorize", {"reason": "分类有误"})
    assert _error(res) == (422, "subcategory_required")
    body = {"reason": "分类有误", "subcategory_code": "0803", "category_code": "09"}
    res = api.post("dispatcher", f"{path}/recategorize", body)
    assert _error(res) == (422, "unknown_subcategory")
    res = api.post("dept-cgj", f"{path}/recategorize", {**body, "category_code": "08"})
    assert _error(res) == (403, "not_permitted")
    api.clock.advance(hours=1)  # 10:00 local
    res = api.post("dispatcher", f"{path}/recategorize", {**body, "category_code": "08"})
    assert res.status_code == 200, res.text
    case = res.json()
    # 护栏损坏 is 交通运输局's, 2 working days: the new unit must accept, on a fresh clock.
    assert (case["subcategory_code"], case["department_code"]) == ("0803", "JTJ")
    assert case["status"] == "dispatched"
    assert case["time_limit"] == {"value": 2, "unit": "working_days"}
    assert case["due_at"] == "2026-11-26T02:00:00Z"  # Thursday 10:00 local
    assert case["history"][-1]["data"]["department_from"] == "CGJ"
    assert api.get("dept-cgj", path).status_code == 404
    assert "accept" in api.get("dept-jtj", path).json()["actions"]

    # Within the same unit the status stays.
    other = _case(api, demo_points, "register", "dispatch", "accept")
    body = {"reason": "实为公厕问题", "subcategory_code": "0806"}
    res = api.post("dispatcher", f"/v1/cases/{other}/recategorize", body)
    assert (res.json()["status"], res.json()["department_code"]) == ("accepted", "CGJ")
