"""Items (条) route a case when the command centre registers it as one: the item's unit (or the
unit of the case's village or town, where another answers for it), urgency, limit and stage
limits; a catalogue import is a new revision and an open case keeps the one it was routed by;
intake keeps the classifier's doubt on the case. SQLite and PostGIS.

The clock starts on Tuesday 2026-11-24, 09:00 local (01:00 UTC)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from dispatch.tasks import run_sweep
from taxonomy.catalogue import load_default_catalogue
from tests.catalogues import import_catalogue
from tests.conftest import Api, new_client_id

GRID = "440604011001001"
OTHER_TOWN_GRID = "440604012001001"
VILLAGE, TOWN = GRID[:12], GRID[:9]
SUB = "0601"  # 暴露垃圾: CGJ, normal, 4 working hours
ITEM, OTHER_ITEM = "0601001", "0601003"

Point = Callable[[str], tuple[float, float]]


def _catalogue(**item_fields: Any) -> dict[str, Any]:
    """The packaged catalogue with ITEM's fields set and OTHER_ITEM answered for by the
    village's ZJJ and the town's SWJ (the village's wins)."""
    data: dict[str, Any] = load_default_catalogue().model_dump(mode="json")
    for cat in data["categories"]:
        for sub in cat["subcategories"]:
            for item in sub["items"]:
                if item["code"] == ITEM:
                    item.update(item_fields)
                if item["code"] == OTHER_ITEM:
                    item["area_departments"] = [
                        {"area_code": TOWN, "department_code": "SWJ"},
                        {"area_code": VILLAGE, "department_code": "ZJJ"},
                    ]
    return data


def _import(api: Api, data: dict[str, Any]) -> int:
    return import_catalogue(api.engine, data, now=api.clock.now)


def _report(api: Api, point: Point, grid: str = GRID, **fields: Any) -> dict[str, Any]:
    lng, lat = point(grid)
    body = {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": "路边有垃圾"}
    res = api.post(f"gw{grid}", "/v1/reports", {**body, **fields})
    assert res.status_code == 201, res.text
    out: dict[str, Any] = res.json()
    return out


def _case(api: Api, case_id: int) -> dict[str, Any]:
    res = api.get("dispatcher", f"/v1/cases/{case_id}")
    assert res.status_code == 200, res.text
    out: dict[str, Any] = res.json()
    return out


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_registering_as_an_item_takes_its_unit_urgency_limit_and_stage_limit(
    api: Api, demo_points: Point
) -> None:
    revision = _import(
        api,
        _catalogue(
            department_code="ZJJ",
            urgency="urgent",
            time_limit={"value": 2, "unit": "working_hours"},
            accept_hours=1,
        ),
    )
    case = _report(api, demo_points, subcategory_code=SUB)
    assert (case["department_code"], case["item_code"], case["catalogue_revision"]) == (
        "CGJ",
        None,
        revision,
    )
    path = f"/v1/cases/{case['id']}"
    res = api.post("dispatcher", f"{path}/register", {"item_code": ITEM})
    assert res.status_code == 200, res.text
    got = res.json()
    assert (got["department_code"], got["urgency"], got["time_limit"]) == (
        "ZJJ",
        "urgent",
        {"value": 2, "unit": "working_hours"},
    )
    assert (got["item_code"], got["item_name"]) == (ITEM, "道路暴露垃圾")
    entry = got["history"][-1] if got.get("history") else _case(api, case["id"])["history"][-1]
    assert entry["data"]["item_code"] == ITEM
    assert entry["data"]["department_from"] == "CGJ"
    # 签收 within the item's 1 working hour, not the service's 2.
    assert api.post("dispatcher", f"{path}/dispatch", {}).status_code == 200
    accept = next(s for s in _case(api, case["id"])["stages"] if s["stage"] == "accept")
    assert _parse(accept["due_at"]) - api.clock.now == timedelta(hours=1)
    assert api.post("dept-zjj", f"{path}/accept", {}).status_code == 200


def test_an_area_override_gives_the_item_to_the_villages_unit_then_the_towns(
    api: Api, demo_points: Point
) -> None:
    _import(api, _catalogue())
    here = _report(api, demo_points, subcategory_code=SUB)
    elsewhere = _report(api, demo_points, grid=OTHER_TOWN_GRID, subcategory_code=SUB)
    for case, unit in ((here, "ZJJ"), (elsewhere, "CGJ")):
        res = api.post("dispatcher", f"/v1/cases/{case['id']}/register", {"item_code": OTHER_ITEM})
        assert res.status_code == 200, res.text
        assert res.json()["department_code"] == unit
    # 改类 to the same item in a village without its own override: the town's unit.
    village_less = _catalogue()
    for cat in village_less["categories"]:
        for sub in cat["subcategories"]:
            for item in sub["items"]:
                if item["code"] == OTHER_ITEM:
                    item["area_departments"] = item["area_departments"][:1]
    _import(api, village_less)
    case = _report(api, demo_points, subcategory_code="0602")
    assert api.post("dispatcher", f"/v1/cases/{case['id']}/register", {}).status_code == 200
    res = api.post(
        "dispatcher",
        f"/v1/cases/{case['id']}/recategorize",
        {"subcategory_code": SUB, "item_code": OTHER_ITEM, "reason": "实为建筑垃圾"},
    )
    assert res.status_code == 200, res.text
    assert (res.json()["department_code"], res.json()["item_code"]) == ("SWJ", OTHER_ITEM)


def test_an_item_of_another_subcategory_is_refused_and_changes_nothing(
    api: Api, demo_points: Point
) -> None:
    case = _report(api, demo_points, subcategory_code=SUB)
    before = _case(api, case["id"])
    for item in ("0602001", "0601999"):
        res = api.post("dispatcher", f"/v1/cases/{case['id']}/register", {"item_code": item})
        assert res.status_code == 422, res.text
        assert res.json()["error"] == "unknown_item"
    after = _case(api, case["id"])
    assert (after["status"], after["version"], after["item_code"]) == (
        before["status"],
        before["version"],
        None,
    )


def test_an_open_case_climbs_the_ladder_of_the_revision_it_was_routed_by(
    api: Api, demo_points: Point
) -> None:
    """Revision 1: urgent cases reach the 村居 at +0.25 of the limit; revision 2 (imported while
    the first case is open): the district at once. Each case climbs its own."""
    first_doc = _catalogue()
    first_doc["escalation"]["urgent"] = [{"past_due": 0.25, "level": 1}]
    first_rev = _import(api, first_doc)
    old = _report(api, demo_points, subcategory_code="0801")  # 井盖: urgent, 4 working hours
    second_doc = _catalogue()
    second_doc["escalation"]["urgent"] = [{"past_due": 0, "level": 3}]
    second_rev = _import(api, second_doc)
    new = _report(api, demo_points, subcategory_code="0801")
    assert (old["catalogue_revision"], new["catalogue_revision"]) == (first_rev, second_rev)
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    api.clock.advance(hours=6, minutes=5)  # 15:05: both red
    run_sweep(api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy)
    assert _case(api, old["id"])["escalation_level"] == 0
    assert _case(api, new["id"])["escalation_level"] == 3
    api.clock.advance(hours=1)  # 16:05: +0.25 of 4 working hours passed at 16:00
    run_sweep(api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy)
    assert _case(api, old["id"])["escalation_level"] == 1


def test_intake_keeps_whether_the_classifier_was_sure(api: Api, demo_points: Point) -> None:
    sure = _report(api, demo_points, description="小区门口的井盖不见了，晚上很危险")
    unsure = _report(api, demo_points, description="😀😀😀 13800138000")
    named = _report(api, demo_points, description="😀😀😀", category_code="08")
    given = _report(api, demo_points, description="😀", subcategory_code=SUB)
    assert sure["classification_uncertain"] is False
    assert unsure["classification_uncertain"] is True
    assert named["classification_uncertain"] is False
    assert given["classification_uncertain"] is None
    assert _case(api, unsure["id"])["classification_uncertain"] is True
