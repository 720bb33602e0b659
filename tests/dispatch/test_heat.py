"""`GET /v1/stats/heat`: cases per area of a level over local days, for a category or all, per
local day or hour of the day; merged duplicates and other periods left out; scoped centres see
their own area only. SQLite and PostGIS."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from app.users import create_user
from core.models import Role
from tests.conftest import Api, new_client_id

Point = Callable[[str], tuple[float, float]]
G1, G2 = "440604011001001", "440604011001002"  # one village
G3 = "440604012001001"  # another town
LOCAL = timedelta(hours=8)


def _report(api: Api, point: Point, grid: str, subcategory: str, at_local: datetime) -> int:
    api.clock.now = (at_local - LOCAL).replace(tzinfo=UTC)
    lng, lat = point(grid)
    body = {
        "client_id": new_client_id(),
        "lat": lat,
        "lng": lng,
        "description": "测试",
        "subcategory_code": subcategory,
    }
    res = api.post(f"gw{grid}", "/v1/reports", body)
    assert res.status_code == 201, res.text
    return int(res.json()["id"])


def _heat(api: Api, user: str = "dispatcher", **params: Any) -> Any:
    res = api.get(
        user, "/v1/stats/heat", params={"from": "2026-11-24", "to": "2026-11-25", **params}
    )
    return res


@pytest.fixture
def scene(api: Api, demo_points: Point) -> dict[str, int]:
    """Tuesday 24 and Wednesday 25 November (local): five 0601 (垃圾) and two 0801 (井盖) in
    the period, one 0601 the day after it; one of G1's merged into another."""
    at = datetime(2026, 11, 24, 9, 30)
    ids = {
        "a": _report(api, demo_points, G1, "0601", at),
        "b": _report(api, demo_points, G1, "0601", at.replace(hour=10)),
        "c": _report(api, demo_points, G2, "0601", at.replace(hour=23, minute=59)),
        "d": _report(api, demo_points, G3, "0601", at + timedelta(days=1)),
        "e": _report(api, demo_points, G3, "0801", at + timedelta(days=1, hours=1)),
        "f": _report(api, demo_points, G1, "0801", at + timedelta(days=1, hours=2)),
        "m": _report(api, demo_points, G1, "0601", at.replace(hour=10, minute=5)),
        "later": _report(api, demo_points, G1, "0601", at + timedelta(days=2)),
    }
    for key in ("b", "m"):
        assert api.post("dispatcher", f"/v1/cases/{ids[key]}/register", {}).status_code == 200
    res = api.post(
        "dispatcher",
        f"/v1/cases/{ids['m']}/merge",
        {"into_case_id": ids["b"], "reason": "同一处垃圾"},
    )
    assert res.status_code == 200, res.text
    return ids


def _counts(body: dict[str, Any]) -> dict[Any, int]:
    return {
        (i["area_code"], i["bucket"]) if i["bucket"] is not None else i["area_code"]: i["count"]
        for i in body["items"]
    }


def test_heat_per_area_at_each_level(api: Api, scene: dict[str, int]) -> None:
    grid = _heat(api).json()
    assert (grid["level"], grid["by"], grid["from"], grid["to"]) == (
        "grid",
        "area",
        "2026-11-24",
        "2026-11-25",
    )
    assert _counts(grid) == {G1: 3, G2: 1, G3: 2}
    assert (grid["total"], grid["max_count"]) == (6, 3)
    assert _counts(_heat(api, level="village").json()) == {G1[:12]: 4, G3[:12]: 2}
    assert _counts(_heat(api, level="town").json()) == {G1[:9]: 4, G3[:9]: 2}
    garbage = _heat(api, category_code="06").json()
    assert _counts(garbage) == {G1: 2, G2: 1, G3: 1}
    assert garbage["category_code"] == "06"


def test_heat_per_local_day_and_hour(api: Api, scene: dict[str, int]) -> None:
    by_day = _counts(_heat(api, by="day", level="town").json())
    assert by_day == {
        (G1[:9], "2026-11-24"): 3,
        (G1[:9], "2026-11-25"): 1,
        (G3[:9], "2026-11-25"): 2,
    }
    by_hour = _counts(_heat(api, by="hour", level="town").json())
    assert by_hour == {
        (G1[:9], 9): 1,
        (G1[:9], 10): 1,
        (G1[:9], 11): 1,
        (G1[:9], 23): 1,
        (G3[:9], 9): 1,
        (G3[:9], 10): 1,
    }


def test_a_scoped_centre_sees_its_own_area_and_others_may_not_look(
    api: Api, scene: dict[str, int]
) -> None:
    with Session(api.engine) as session:
        create_user(
            session,
            username="town-centre",
            password="town-centre-password-1",
            role=Role.DISPATCHER,
            area_code=G3[:9],
            display_name="镇街指挥中心",
            now=api.clock.now,
        )
        session.commit()
    assert _counts(_heat(api, "town-centre").json()) == {G3: 2}
    assert _heat(api, f"gw{G1}").status_code == 403
    assert _heat(api, "dept-cgj").status_code == 403


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"category_code": "99"}, "unknown_category"),
        ({"level": "district"}, "validation_error"),
        ({"by": "week"}, "validation_error"),
        ({"to": "2026-11-01"}, "invalid_range"),
        ({"colour": "red"}, "unknown_parameter"),
    ],
)
def test_bad_heat_queries_are_refused(api: Api, params: dict[str, str], code: str) -> None:
    res = _heat(api, **params)
    assert res.status_code == 422, res.text
    assert res.json()["error"] == code
