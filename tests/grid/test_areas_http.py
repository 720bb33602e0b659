"""GET /v1/areas: the demo district's areas with their names, by level and parent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

DISTRICT = "440604"
TOWN = "440604011"  # 石湾镇街道
VILLAGE = "440604011001"
WORKER = "gw440604011001001"


def _areas(api: Api, **params: Any) -> dict[str, Any]:
    res = api.get(WORKER, "/v1/areas", params=params)
    assert res.status_code == 200, res.text
    return res.json()


def test_towns_are_listed_by_code_with_names_and_no_geometry(api: Api) -> None:
    towns = _areas(api, level="town")
    assert towns["total"] == len(towns["items"]) > 1
    codes = [t["code"] for t in towns["items"]]
    assert codes == sorted(codes)
    assert TOWN in codes
    for town in towns["items"]:
        assert set(town) == {"code", "name", "level", "parent_code"}
        assert (town["level"], town["parent_code"], len(town["code"])) == ("town", DISTRICT, 9)
        assert town["name"]


def test_parent_lists_the_areas_directly_under_it(api: Api) -> None:
    villages = _areas(api, parent=TOWN)["items"]
    assert villages
    assert VILLAGE in [v["code"] for v in villages]
    assert {(v["level"], v["parent_code"]) for v in villages} == {("village", TOWN)}
    grids = _areas(api, level="grid", parent=VILLAGE)["items"]
    assert grids
    assert all(g["code"].startswith(VILLAGE) for g in grids)
    assert {(g["level"], g["parent_code"]) for g in grids} == {("grid", VILLAGE)}
    assert _areas(api, level="town", parent=TOWN) == {"items": [], "total": 0}


def test_names_match_the_path_the_locator_answers(api: Api, demo_points: Any) -> None:
    lng, lat = demo_points(WORKER[2:])
    located = api.get(WORKER, "/v1/grids/locate", params={"lat": lat, "lng": lng}).json()
    for step in located["path"][1:]:
        level = _areas(api, level=step["level"], parent=step["code"][: len(step["code"]) - 3])
        assert {a["code"]: a["name"] for a in level["items"]}[step["code"]] == step["name"]


def test_pages_are_bounded_and_total_counts_them_all(api: Api) -> None:
    every = _areas(api, level="grid")
    first = _areas(api, level="grid", limit=2)
    rest = _areas(api, level="grid", limit=2000, offset=2)
    assert first["total"] == rest["total"] == every["total"] > 2
    assert first["items"] + rest["items"] == every["items"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("lvl=town", "unknown_parameter"),
        ("level=town&level=grid", "repeated_parameter"),
        ("level=county", "validation_error"),
        ("parent=4406", "validation_error"),
        ("limit=0", "validation_error"),
        ("limit=2001", "validation_error"),
    ],
)
def test_bad_query_is_422(api: Api, query: str, code: str) -> None:
    res = api.get(WORKER, f"/v1/areas?{query}")
    assert (res.status_code, res.json()["error"]) == (422, code)


def test_areas_need_an_account_before_their_parameters_are_judged(api: Api) -> None:
    for query in ("level=town", "lvl=town"):
        res = api.client.get(f"/v1/areas?{query}")
        assert (res.status_code, res.json()["error"]) == (401, "missing_token")
