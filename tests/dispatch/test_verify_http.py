"""`verify` through HTTP, on SQLite and PostGIS: `passed` must be said (true or false)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, new_client_id

GRID = "440604011001001"
WORKER = f"gw{GRID}"
Point = Callable[[str], tuple[float, float]]


def _resolved_case(api: Api, point: Point) -> int:
    lng, lat = point(GRID)
    body = {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": "井盖丢失"}
    res = api.post(WORKER, "/v1/reports", body)
    assert res.status_code == 201, res.text
    cid = int(res.json()["id"])
    for user, action, params in [
        ("dispatcher", "register", {}),
        ("dispatcher", "dispatch", {}),
        ("dept-cgj", "accept", {}),
        ("dept-cgj", "resolve", {"note": "已补装井盖"}),
    ]:
        assert api.post(user, f"/v1/cases/{cid}/{action}", params).status_code == 200
    return cid


@pytest.mark.parametrize("body", [None, {}, {"reason": "看过了"}, {"passed": None}])
def test_verify_without_passed_is_422_and_changes_nothing(
    api: Api, demo_points: Point, body: dict[str, Any] | None
) -> None:
    cid = _resolved_case(api, demo_points)
    before = api.get("dispatcher", f"/v1/cases/{cid}").json()
    res = api.post(WORKER, f"/v1/cases/{cid}/verify", body)
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "passed_required"
    after = api.get("dispatcher", f"/v1/cases/{cid}").json()
    assert (after["status"], after["version"], len(after["history"])) == (
        "resolved",
        before["version"],
        len(before["history"]),
    )


def test_verify_passed_true_verifies_the_case(api: Api, demo_points: Point) -> None:
    cid = _resolved_case(api, demo_points)
    res = api.post(WORKER, f"/v1/cases/{cid}/verify", {"passed": True})
    assert res.status_code == 200, res.text
    assert res.json()["status"] == "verified"
    assert res.json()["history"][-1]["data"]["passed"] is True


def test_verify_passed_false_sends_the_case_back(api: Api, demo_points: Point) -> None:
    cid = _resolved_case(api, demo_points)
    res = api.post(WORKER, f"/v1/cases/{cid}/verify", {"passed": False, "reason": "井盖仍缺失"})
    assert res.status_code == 200, res.text
    assert (res.json()["status"], res.json()["redo_count"]) == ("dispatched", 1)
    assert res.json()["history"][-1]["data"]["passed"] is False
