"""Bad text through HTTP, on SQLite and PostGIS: a lone surrogate or an oversized code is a 4xx
for the item that carries it (never a 500), and the good items of a batch are stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.events.reports import counts, report_body

GRID = "440604011001001"
WORKER = f"gw{GRID}"
LONE = "\ud800"  # legal in JSON ("\ud800"), not valid Unicode
Point = Callable[[str], tuple[float, float]]


def _post_raw(api: Api, user: str, path: str, body: Any) -> Any:
    """POST JSON with \\uXXXX escapes (json.dumps' default), so lone surrogates travel as such."""
    return api.client.post(
        path,
        content=json.dumps(body).encode("ascii"),
        headers={**api.headers(user), "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    "over",
    [
        {"description": f"井盖{LONE}丢失"},
        {"client_id": f"phone-{LONE}"},
        {"crs": LONE},
        {"category_code": LONE},
        {"subcategory_code": LONE},
        {"attachment_ids": [LONE]},
    ],
)
def test_lone_surrogate_in_a_report_is_422_and_stores_nothing(
    api: Api, demo_points: Point, over: dict[str, Any]
) -> None:
    before = counts(api)
    res = _post_raw(api, WORKER, "/v1/reports", report_body(demo_points, **over))
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "validation_error"
    assert "Unicode" in res.json()["detail"]
    assert counts(api) == before


@pytest.mark.parametrize(
    "over",
    [
        {"client_id": "x" * 10_000},
        {"category_code": "0" * 100},
        {"subcategory_code": "0" * 100},
        {"crs": "w" * 10_000},
        {"attachment_ids": ["a" * 10_000]},
    ],
)
def test_oversized_client_id_or_code_is_422_and_stores_nothing(
    api: Api, demo_points: Point, over: dict[str, Any]
) -> None:
    before = counts(api)
    res = api.post(WORKER, "/v1/reports", report_body(demo_points, **over))
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "validation_error"
    assert counts(api) == before


def test_batch_of_three_with_one_lone_surrogate_stores_two(api: Api, demo_points: Point) -> None:
    good_a, good_b = report_body(demo_points), report_body(demo_points)
    bad = report_body(demo_points, description=f"路灯{LONE}不亮")
    batch = {"reports": [good_a, bad, good_b]}
    before = counts(api)
    res = _post_raw(api, WORKER, "/v1/reports/batch", batch)
    assert res.status_code == 200, res.text
    results = res.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 201]
    assert results[1]["error"]["error"] == "validation_error"
    assert results[1]["error"]["detail"] == (
        "请求内容无效：description：文本不是有效的 Unicode（含孤立的代理字符）"
    )
    assert results[1]["client_id"] == bad["client_id"]
    assert [r["client_id"] for r in (results[0], results[2])] == [
        good_a["client_id"],
        good_b["client_id"],
    ]
    cases = counts(api)[0]
    assert cases == before[0] + 2
    # The phone resends the whole batch: the same two cases, the same refusal, nothing new.
    again = _post_raw(api, WORKER, "/v1/reports/batch", batch).json()["results"]
    assert [r["status"] for r in again] == [200, 422, 200]
    assert [r["case"]["id"] for r in (again[0], again[2])] == [
        results[0]["case"]["id"],
        results[2]["case"]["id"],
    ]
    assert counts(api)[0] == cases


def test_batch_items_that_are_not_reports_fail_alone(api: Api, demo_points: Point) -> None:
    good = report_body(demo_points)
    items = [
        good,
        "not an object",
        42,
        {"client_id": LONE, "description": "x"},  # its id is not echoed back
        {LONE: 1, "client_id": "k"},  # nor can a bad field name break the answer
        report_body(demo_points, client_id="x" * 10_000),
    ]
    res = _post_raw(api, WORKER, "/v1/reports/batch", {"reports": items})
    assert res.status_code == 200, res.text
    results = res.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 422, 422, 422, 422]
    assert [r["client_id"] for r in results] == [good["client_id"], None, None, None, "k", None]


def test_batch_over_the_item_limit_is_refused_whole(api: Api, demo_points: Point) -> None:
    before = counts(api)
    res = api.post(WORKER, "/v1/reports/batch", {"reports": [report_body(demo_points)] * 201})
    assert res.status_code == 422
    assert counts(api) == before


def _resolved_case(api: Api, point: Point) -> int:
    res = api.post(WORKER, "/v1/reports", report_body(point))
    assert res.status_code == 201, res.text
    cid = int(res.json()["id"])
    for user, action, body in [
        ("dispatcher", "register", {}),
        ("dispatcher", "dispatch", {}),
        ("dept-cgj", "accept", {}),
        ("dept-cgj", "resolve", {"note": "已补装井盖"}),
    ]:
        assert api.post(user, f"/v1/cases/{cid}/{action}", body).status_code == 200
    return cid


@pytest.mark.parametrize(
    "body",
    [
        {"passed": False, "reason": f"井盖{LONE}仍缺失"},
        {"passed": True, "note": LONE},
        {"passed": True, "grid_code": LONE},
    ],
)
def test_lone_surrogate_in_an_action_is_422_and_changes_nothing(
    api: Api, demo_points: Point, body: dict[str, Any]
) -> None:
    cid = _resolved_case(api, demo_points)
    before = counts(api)
    res = _post_raw(api, WORKER, f"/v1/cases/{cid}/verify", body)
    assert res.status_code == 422, res.text
    assert counts(api) == before
    assert api.get(WORKER, f"/v1/cases/{cid}").json()["status"] == "resolved"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/cases", {"department_code": "CGJ\x00"}),  # PostgreSQL refuses NUL in text
        ("/v1/cases", {"department_code": "C" * 10_000}),
        ("/v1/grids/locate", {"lat": "23.0\x00", "lng": "113.1"}),
        ("/v1/grids/locate", {"lat": "2" * 10_000, "lng": "113.1"}),
        ("/v1/grids/locate", {"lat": "23.0", "lng": "113.1", "crs": "wgs84\x00"}),
    ],
)
def test_control_characters_or_oversized_query_parameters_are_422(
    api: Api, path: str, params: dict[str, str]
) -> None:
    res = api.get(WORKER, path, params=params)
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "validation_error"


def test_control_character_in_a_login_name_is_422_not_500(api: Api) -> None:
    res = api.client.post("/v1/auth/token", data={"username": "admin\x00", "password": "x"})
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "validation_error"
