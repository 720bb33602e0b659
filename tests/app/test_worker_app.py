"""The grid worker's phone app through HTTP, on SQLite and PostGIS: GET /v1/me/tasks (核查 waiting
in their grids, their own reports) and POST /v1/auth/refresh with logout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.conftest import Api, new_client_id

GRID = "440604011001001"
OTHER_GRID = "440604011002001"
WORKER, OTHER_WORKER = f"gw{GRID}", f"gw{OTHER_GRID}"
Point = Callable[[str], tuple[float, float]]


def _report(api: Api, point: Point, grid: str = GRID, who: str = WORKER, text: str = "") -> int:
    lng, lat = point(grid)
    body = {
        "client_id": new_client_id(),
        "lat": lat,
        "lng": lng,
        "crs": "wgs84",
        "description": text or "小区门口井盖丢失，很危险",
    }
    res = api.post(who, "/v1/reports", body)
    assert res.status_code == 201, res.text
    return int(res.json()["id"])


def _act(api: Api, who: str, case_id: int, action: str, body: Any = None) -> dict[str, Any]:
    res = api.post(who, f"/v1/cases/{case_id}/{action}", body or {})
    assert res.status_code == 200, (action, res.text)
    return res.json()  # type: ignore[no-any-return]


def _resolve(api: Api, case_id: int) -> None:
    _act(api, "dispatcher", case_id, "register")
    dept = "dept-" + _act(api, "dispatcher", case_id, "dispatch")["department_code"].lower()
    _act(api, dept, case_id, "accept")
    _act(api, dept, case_id, "resolve", {"note": "已处理"})


def _tasks(api: Api, who: str = WORKER, **params: Any) -> dict[str, Any]:
    res = api.get(who, "/v1/me/tasks", params=params)
    assert res.status_code == 200, res.text
    return res.json()  # type: ignore[no-any-return]


def test_resolved_cases_in_my_grids_wait_for_my_check_soonest_due_first(
    api: Api, demo_points: Point
) -> None:
    first = _report(api, demo_points, who="dispatcher")
    second = _report(api, demo_points, who="dispatcher")
    elsewhere = _report(api, demo_points, OTHER_GRID, who="dispatcher")
    _resolve(api, second)
    api.clock.advance(minutes=30)
    _resolve(api, first)
    _resolve(api, elsewhere)
    verify = _tasks(api)["verify"]
    assert [t["case"]["id"] for t in verify["items"]] == [second, first]
    assert verify["total"] == 2
    task = verify["items"][0]
    assert task["due_at"] is not None
    assert task["warning_level"] == "none"
    assert 0 < task["remaining_working_hours"] <= 8
    assert "verify" in task["case"]["actions"]
    assert [t["case"]["id"] for t in _tasks(api, OTHER_WORKER)["verify"]["items"]] == [elsewhere]
    _act(api, WORKER, second, "verify", {"passed": True})
    assert [t["case"]["id"] for t in _tasks(api)["verify"]["items"]] == [first]


def test_my_reports_are_paged_newest_first_with_their_status(api: Api, demo_points: Point) -> None:
    ids = []
    for _ in range(3):
        ids.append(_report(api, demo_points))
        api.clock.advance(minutes=1)
    _report(api, demo_points, OTHER_GRID, who=OTHER_WORKER)
    _act(api, "dispatcher", ids[0], "merge", {"into_case_id": ids[1], "reason": "同一井盖"})
    page = _tasks(api, limit=2)["reports"]
    assert page["total"] == 3
    assert [r["case"]["id"] for r in page["items"]] == [ids[2], ids[1]]
    assert page["items"][0]["case"]["status"] == "reported"
    rest = _tasks(api, limit=2, offset=2)["reports"]["items"]
    assert [r["case"]["id"] for r in rest] == [ids[0]]
    assert rest[0]["case"]["status"] == "merged"
    assert rest[0]["case"]["merged_into"]["id"] == ids[1]
    assert rest[0]["client_id"]


@pytest.mark.parametrize("who", ["dispatcher", "admin", "dept-cgj"])
def test_other_roles_have_no_task_list(api: Api, who: str) -> None:
    res = api.get(who, "/v1/me/tasks")
    assert (res.status_code, res.json()["error"]) == (403, "wrong_role")


def test_an_unknown_parameter_is_refused(api: Api) -> None:
    res = api.get(WORKER, "/v1/me/tasks", params={"status": "resolved"})
    assert (res.status_code, res.json()["error"]) == (422, "unknown_parameter")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def test_refresh_gives_a_new_token_and_revokes_the_old_one(api: Api) -> None:
    old = api.token(WORKER)
    api.clock.advance(minutes=10)
    res = api.client.post("/v1/auth/refresh", headers=_bearer(old))
    assert res.status_code == 200, res.text
    body = res.json()
    new = body["access_token"]
    assert (body["role"], body["token_type"]) == ("grid_worker", "bearer")
    before, after = _claims(old), _claims(new)
    assert after["jti"] != before["jti"]
    assert after["exp"] == int(api.clock.now.timestamp()) + body["expires_in"]
    assert after["exp"] > before["exp"]
    assert api.client.get("/v1/me/tasks", headers=_bearer(new)).status_code == 200
    for path in ("/v1/me/tasks", "/v1/auth/refresh"):
        method = api.client.get if path == "/v1/me/tasks" else api.client.post
        refused = method(path, headers=_bearer(old))
        assert (refused.status_code, refused.json()["error"]) == (401, "token_revoked")


def test_a_logged_out_token_cannot_be_refreshed(api: Api) -> None:
    token = api.token("dispatcher")
    first = api.client.post("/v1/auth/refresh", headers=_bearer(token)).json()["access_token"]
    assert api.client.post("/v1/auth/logout", headers=_bearer(first)).status_code == 204
    refused = api.client.post("/v1/auth/refresh", headers=_bearer(first))
    assert (refused.status_code, refused.json()["error"]) == (401, "token_revoked")


def test_an_expired_or_missing_token_cannot_be_refreshed(api: Api) -> None:
    token = api.token(WORKER)  # an hour
    api.clock.advance(hours=2)
    expired = api.client.post("/v1/auth/refresh", headers=_bearer(token))
    assert (expired.status_code, expired.json()["error"]) == (401, "token_expired")
    missing = api.client.post("/v1/auth/refresh")
    assert (missing.status_code, missing.json()["error"]) == (401, "missing_token")
