"""The case list, lookup by case_no, the names in a case answer, departments, and whole extensions.

Every test has a database of its own and files its own cases, with a marker in the description
that it lists by (`q=marker`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from dispatch.tasks import run_sweep
from grid.coords import wgs84_to_gcj02
from tests.conftest import Api, new_client_id

GRID = "440604011001001"  # 石湾镇街道, first village, first micro-grid
WORKER = f"gw{GRID}"
Point = Callable[[str], tuple[float, float]]


def _marker() -> str:
    return f"Mk{uuid.uuid4().hex[:12]}"


def _report(
    api: Api, point: Point, marker: str, *, grid: str = GRID, who: str | None = None
) -> dict[str, Any]:
    lng, lat = point(grid)
    g_lng, g_lat = wgs84_to_gcj02(lng, lat)
    body = {
        "client_id": new_client_id(),
        "lat": g_lat,
        "lng": g_lng,
        "crs": "gcj02",
        "description": f"{marker} 某路口井盖丢失，很危险",
    }
    res = api.post(who or f"gw{grid}", "/v1/reports", body)
    assert res.status_code == 201, res.text
    return res.json()


def _list(api: Api, who: str = "dispatcher", **params: Any) -> dict[str, Any]:
    res = api.get(who, "/v1/cases", params=params)
    assert res.status_code == 200, res.text
    return res.json()


def _ids(answer: dict[str, Any]) -> list[int]:
    return [c["id"] for c in answer["items"]]


def _other_town_grid(grids: list[str]) -> str:
    return next(g for g in grids if g[:9] != GRID[:9])


def test_list_answers_a_page_and_the_total_of_all_pages(api: Api, demo_points: Point) -> None:
    marker = _marker()
    ids = []
    for _ in range(3):
        ids.append(_report(api, demo_points, marker)["id"])
        api.clock.advance(minutes=1)
    first = _list(api, q=marker, limit=2)
    second = _list(api, q=marker, limit=2, offset=2)
    assert (first["total"], second["total"]) == (3, 3)
    # Newest first by default.
    assert _ids(first) + _ids(second) == ids[::-1]


def test_status_is_repeatable_and_matches_any_of_them(api: Api, demo_points: Point) -> None:
    marker = _marker()
    reported = _report(api, demo_points, marker)["id"]
    registered = _report(api, demo_points, marker)["id"]
    assert api.post("dispatcher", f"/v1/cases/{registered}/register", {}).status_code == 200
    both = _list(api, q=marker, status=["reported", "registered"], sort="reported_at")
    only = _list(api, q=marker, status="registered")
    assert (_ids(both), both["total"]) == ([reported, registered], 2)
    assert (_ids(only), only["total"]) == ([registered], 1)


@pytest.mark.parametrize(
    "query",
    ["grid_code=440604", "warning_level=red", "before_id=5", "page=2", "q=x&foo=1"],
)
def test_unknown_parameter_is_422_naming_it(api: Api, query: str) -> None:
    res = api.get("dispatcher", f"/v1/cases?{query}")
    name = query.split("&")[-1].split("=")[0]
    assert res.status_code == 422
    assert res.json()["error"] == "unknown_parameter"
    assert repr(name) in res.json()["detail"]


@pytest.mark.parametrize("name", ["sla", "limit", "q", "area_code"])
def test_repeated_parameter_other_than_status_is_422(api: Api, name: str) -> None:
    value = {"sla": "ok", "limit": "5", "q": "x", "area_code": "440604"}[name]
    res = api.get("dispatcher", f"/v1/cases?{name}={value}&{name}={value}")
    assert res.status_code == 422
    assert res.json()["error"] == "repeated_parameter"
    assert repr(name) in res.json()["detail"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "validation_error"),
        ({"limit": 201}, "validation_error"),
        ({"offset": -1}, "validation_error"),
        ({"sort": "id"}, "validation_error"),
        ({"sla": "red"}, "validation_error"),
        ({"channel": "command_centre"}, "validation_error"),
        ({"area_code": "4406040"}, "validation_error"),
        ({"from": "yesterday"}, "invalid_datetime"),
    ],
)
def test_invalid_filter_values_are_422(api: Api, params: dict[str, Any], code: str) -> None:
    res = api.get("dispatcher", "/v1/cases", params=params)
    assert (res.status_code, res.json()["error"]) == (422, code)


def test_area_code_filters_at_every_level(
    api: Api, demo_points: Point, demo_grid_codes: list[str]
) -> None:
    marker = _marker()
    here = _report(api, demo_points, marker)["id"]
    elsewhere_grid = _other_town_grid(demo_grid_codes)
    elsewhere = _report(api, demo_points, marker, grid=elsewhere_grid)["id"]
    for length in (9, 12, 15):
        assert _ids(_list(api, q=marker, area_code=GRID[:length])) == [here]
    assert _ids(_list(api, q=marker, area_code=elsewhere_grid[:9])) == [elsewhere]
    assert sorted(_ids(_list(api, q=marker, area_code=GRID[:6]))) == sorted([here, elsewhere])


def test_category_and_department_filters_match_codes(api: Api, demo_points: Point) -> None:
    marker = _marker()
    case = _report(api, demo_points, marker)
    code, dept = case["category_code"], case["department_code"]
    assert _ids(_list(api, q=marker, category_code=code, department_code=dept)) == [case["id"]]
    other = "01" if code != "01" else "02"
    assert _list(api, q=marker, category_code=other)["total"] == 0
    assert _list(api, q=marker, department_code="NO-SUCH")["total"] == 0


def test_channel_dispatcher_is_a_command_centre_report(api: Api, demo_points: Point) -> None:
    marker = _marker()
    worker = _report(api, demo_points, marker)
    centre = _report(api, demo_points, marker, who="dispatcher")
    assert (worker["channel"], centre["channel"]) == ("grid_worker", "dispatcher")
    assert _ids(_list(api, q=marker, channel="dispatcher")) == [centre["id"]]
    assert _ids(_list(api, q=marker, channel="grid_worker")) == [worker["id"]]
    assert _list(api, q=marker, channel="dispatcher")["items"][0]["channel"] == "dispatcher"


def test_sla_filter_maps_ok_warning_overdue(api: Api, demo_points: Point) -> None:
    # 09:00 local, 4 working hours with lunch 12:00-14:00: due 15:00, warned at 14:12.
    marker = _marker()
    late = _report(api, demo_points, marker)["id"]
    api.clock.advance(hours=1)  # 10:00: due 16:00, warned at 15:12
    warned = _report(api, demo_points, marker)["id"]
    api.clock.advance(hours=5, minutes=20)  # 15:20
    fresh = _report(api, demo_points, marker)["id"]
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    run_sweep(api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy)
    assert _ids(_list(api, q=marker, sla="overdue")) == [late]
    assert _ids(_list(api, q=marker, sla="warning")) == [warned]
    assert _ids(_list(api, q=marker, sla="ok")) == [fresh]


def test_q_is_case_insensitive_and_takes_wildcards_literally(api: Api, demo_points: Point) -> None:
    marker = _marker()
    literal = _report(api, demo_points, f"{marker}_5%")["id"]
    other = _report(api, demo_points, f"{marker}x5y")["id"]
    assert _ids(_list(api, q=marker.upper())) == [other, literal]
    assert _ids(_list(api, q=f"{marker}_5%")) == [literal]
    assert _list(api, q=f"{marker}_5_")["total"] == 0


def test_q_finds_a_case_by_its_case_no(api: Api, demo_points: Point) -> None:
    case = _report(api, demo_points, _marker())
    assert _ids(_list(api, q=case["case_no"])) == [case["id"]]


def test_from_and_to_dates_are_local_days_to_inclusive(api: Api, demo_points: Point) -> None:
    marker = _marker()
    api.clock.now = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)  # 23:30 on the 24th, local
    late_evening = _report(api, demo_points, marker)["id"]
    api.clock.now = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)  # 00:30 on the 25th, local
    after_midnight = _report(api, demo_points, marker)["id"]
    day = "2026-11-24"
    assert _ids(_list(api, q=marker, **{"from": day, "to": day})) == [late_evening]
    assert _ids(_list(api, q=marker, **{"from": "2026-11-25"})) == [after_midnight]
    assert _ids(_list(api, q=marker, to="2026-11-24T23:30:00+08:00")) == [late_evening]
    assert _ids(_list(api, q=marker, **{"from": "2026-11-24T15:30:01Z"})) == [after_midnight]
    # Without an offset a datetime is local time.
    assert _ids(_list(api, q=marker, **{"from": "2026-11-25T00:00:00"})) == [after_midnight]


def test_sort_by_due_at_both_ways_with_ties_by_id(api: Api, demo_points: Point) -> None:
    marker = _marker()
    first = _report(api, demo_points, marker)["id"]  # due 15:00
    api.clock.advance(hours=1)
    second = _report(api, demo_points, marker)["id"]  # due 16:00
    # Dispatched and extended by 2 hours, the first is due after the second.
    for action, body in (("register", {}), ("dispatch", {})):
        assert api.post("dispatcher", f"/v1/cases/{first}/{action}", body).status_code == 200
    extended = api.post(
        "dispatcher", f"/v1/cases/{first}/extend", {"amount": 2, "reason": "需协调"}
    ).json()
    assert extended["due_at"] > _list(api, q=marker, sort="due_at")["items"][0]["due_at"]
    assert _ids(_list(api, q=marker, sort="due_at")) == [second, first]
    assert _ids(_list(api, q=marker, sort="-due_at")) == [first, second]
    assert _ids(_list(api, q=marker, sort="reported_at")) == [first, second]


def test_visibility_applies_to_items_and_total(
    api: Api, demo_points: Point, demo_grid_codes: list[str]
) -> None:
    marker = _marker()
    mine = _report(api, demo_points, marker)["id"]
    other_grid = _other_town_grid(demo_grid_codes)
    _report(api, demo_points, marker, grid=other_grid)
    seen = _list(api, WORKER, q=marker)
    assert (_ids(seen), seen["total"]) == ([mine], 1)
    # A department sees only cases dispatched to it: none of these yet.
    assert _list(api, "dept-cgj", q=marker) == {"items": [], "total": 0}
    assert _list(api, "dispatcher", q=marker)["total"] == 2


def test_case_is_read_and_acted_on_by_its_case_no(api: Api, demo_points: Point) -> None:
    case = _report(api, demo_points, _marker())
    read = api.get("dispatcher", f"/v1/cases/{case['case_no']}")
    assert (read.status_code, read.json()["id"]) == (200, case["id"])
    acted = api.post("dispatcher", f"/v1/cases/{case['case_no']}/register", {})
    assert (acted.status_code, acted.json()["status"]) == (200, "registered")
    # Another grid's worker is not told it exists.
    unseen = api.get("gw440604011001002", f"/v1/cases/{case['case_no']}")
    assert (unseen.status_code, unseen.json()["error"]) == (404, "case_not_found")
    missing = api.get("dispatcher", "/v1/cases/20261124999999")
    assert (missing.status_code, missing.json()["error"]) == (404, "case_not_found")


def test_case_answer_carries_names_of_its_codes(api: Api, demo_points: Point) -> None:
    case = _report(api, demo_points, _marker())
    assert (case["status"], case["status_label"]) == ("reported", "待受理")
    catalogue = api.client.app.state.runtime.taxonomy.get().catalogue  # type: ignore[attr-defined]
    category = catalogue.category(case["category_code"])
    sub = catalogue.subcategory(case["subcategory_code"])
    assert (case["category_name"], case["subcategory_name"]) == (category.name, sub.name)
    assert case["subcategory_name"] == "井盖缺失破损"  # the default catalogue's name for 0801
    departments = api.get("dispatcher", "/v1/departments").json()["items"]
    assert case["department_name"] == {d["code"]: d["name"] for d in departments}["CGJ"]
    path = case["area_path"]
    assert [(a["code"], a["level"]) for a in path] == [
        (GRID[:6], "district"),
        (GRID[:9], "town"),
        (GRID[:12], "village"),
        (GRID, "grid"),
    ]
    towns = api.get("dispatcher", "/v1/areas", params={"level": "town"}).json()["items"]
    assert path[1]["name"] == {t["code"]: t["name"] for t in towns}[GRID[:9]]
    listed = _list(api, q=case["case_no"])["items"][0]
    # The same case, but `actions` are the viewer's own (reporter here, dispatcher there).
    assert (case["actions"], listed["actions"]) == ([], ["register", "reject", "merge"])
    assert {k: listed[k] for k in case if k not in ("history", "actions")} == {
        k: case[k] for k in case if k not in ("history", "actions")
    }


@contextmanager
def _statements(api: Api) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        # Only reads of cases and their names (not the account checks, which come and go).
        if any(f"FROM {t}" in args[2] for t in ("gg_case", "area", "department")):
            seen.append(args[2])

    event.listen(api.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(api.engine, "before_cursor_execute", count)


def test_names_of_a_page_cost_no_queries(
    api: Api, demo_points: Point, demo_grid_codes: list[str]
) -> None:
    marker = _marker()
    for grid in (GRID, _other_town_grid(demo_grid_codes), "440604011001002"):
        _report(api, demo_points, marker, grid=grid)
    _list(api, q=marker)  # the token's account is cached from here on
    with _statements(api) as one:
        assert len(_list(api, q=marker, limit=1)["items"]) == 1
    with _statements(api) as three:
        assert len(_list(api, q=marker, limit=3)["items"]) == 3
    assert len(three) == len(one) == 2  # count and page: names come from the process's cache


def test_departments_are_listed_with_names_for_any_account(api: Api) -> None:
    res = api.get(WORKER, "/v1/departments")
    assert res.status_code == 200
    items = res.json()["items"]
    assert [d["code"] for d in items] == sorted(d["code"] for d in items)
    cgj = next(d for d in items if d["code"] == "CGJ")
    assert set(cgj) == {"code", "name", "short_name", "active"}
    assert cgj["name"]
    assert cgj["active"] is True
    assert api.client.get("/v1/departments").status_code == 401
    assert api.get(WORKER, "/v1/departments?all=1").json()["error"] == "unknown_parameter"


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (0.4, "invalid_amount"),
        (1.5, "invalid_amount"),
        (0, "invalid_amount"),
        (-1, "invalid_amount"),
        ("2", "validation_error"),
        (True, "validation_error"),
    ],
)
def test_extend_refuses_anything_but_a_whole_positive_number(
    api: Api, demo_points: Point, amount: Any, code: str
) -> None:
    case = _report(api, demo_points, _marker())
    for action in ("register", "dispatch"):
        assert api.post("dispatcher", f"/v1/cases/{case['id']}/{action}", {}).status_code == 200
    res = api.post(
        "dispatcher", f"/v1/cases/{case['id']}/extend", {"amount": amount, "reason": "需协调"}
    )
    assert (res.status_code, res.json()["error"]) == (422, code), res.text
    after = api.get("dispatcher", f"/v1/cases/{case['id']}").json()
    assert (after["extension_count"], after["time_limit"]) == (0, case["time_limit"])


@pytest.mark.parametrize("amount", [2, 2.0])
def test_extend_adds_whole_units(api: Api, demo_points: Point, amount: Any) -> None:
    case = _report(api, demo_points, _marker())
    for action in ("register", "dispatch"):
        assert api.post("dispatcher", f"/v1/cases/{case['id']}/{action}", {}).status_code == 200
    res = api.post(
        "dispatcher", f"/v1/cases/{case['id']}/extend", {"amount": amount, "reason": "需协调"}
    )
    assert res.status_code == 200, res.text
    assert res.json()["extension_count"] == 1
    assert res.json()["time_limit"]["value"] == case["time_limit"]["value"] + 2
