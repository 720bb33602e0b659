"""Catalogue items (条): shipped with the default catalogue, validated with every import, kept
by an export → import round trip."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from taxonomy.catalogue import load_default_catalogue, parse_catalogue
from tests.taxonomy.conftest import OwnDb
from tests.taxonomy.test_import import _current, _import, _refused

CATALOGUE = load_default_catalogue()


def test_every_subcategory_ships_at_least_three_items() -> None:
    for _, sub in CATALOGUE.iter_subcategories():
        assert len(sub.items) >= 3, sub.code
        names = [item.name for item in sub.items]
        assert len(set(names)) == len(names), sub.code
        for item in sub.items:
            assert item.code.startswith(sub.code)
            assert len(item.filing_condition) >= 10, item.code
            assert len(item.closing_condition) >= 10, item.code


def test_items_name_only_known_units(engine: Any) -> None:
    from sqlalchemy import select
    from sqlmodel import col

    from dispatch.models import Department

    with engine.connect() as conn:
        known = set(conn.scalars(select(col(Department.code))))
    used = set().union(*(sub.departments() for _, sub in CATALOGUE.iter_subcategories()))
    assert used <= known, used - known


def _with_item(data: dict[str, Any], sub_code: str, item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = copy.deepcopy(data)
    for cat in out["categories"]:
        for sub in cat["subcategories"]:
            if sub["code"] == sub_code:
                sub["items"].append(item)
    return out


ITEM = {
    "code": "0802099",
    "name": "灯杆广告牌松脱",
    "filing_condition": "路灯杆上悬挂的广告牌松脱或倾斜，有坠落风险",
    "closing_condition": "广告牌已拆除或加固，现场复核无坠落风险",
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"code": "0801001"}, "item 0801001 (灯杆广告牌松脱) does not start with its subcategory"),
        ({"code": "0802001"}, "duplicate item code 0802001"),
        ({"filing_condition": ""}, "filing_condition"),
        ({"code": "08021"}, "items[4](code '08021').code"),
        (
            {"area_departments": [{"area_code": "440604011", "department_code": "ZJJ"}] * 2},
            "an area is named twice",
        ),
    ],
)
def test_a_bad_item_refuses_the_whole_catalogue_naming_it(
    change: dict[str, Any], problem: str
) -> None:
    data = _with_item(CATALOGUE.model_dump(mode="json"), "0802", {**ITEM, **change})
    with pytest.raises(ValueError, match="invalid catalogue") as caught:
        parse_catalogue(data)
    assert problem in str(caught.value)


def test_an_item_with_an_unknown_unit_is_refused(own_db: OwnDb) -> None:
    data = _with_item(_current(own_db), "0802", {**ITEM, "department_code": "NOPE"})
    assert _refused(own_db, data) == ("unknown department code NOPE",)
    area = {"area_departments": [{"area_code": "440604011", "department_code": "NOPE2"}]}
    data = _with_item(_current(own_db), "0802", {**ITEM, **area})
    assert _refused(own_db, data) == ("unknown department code NOPE2",)


def test_items_survive_an_export_and_import_round_trip(own_db: OwnDb) -> None:
    override = {"area_departments": [{"area_code": "440604011", "department_code": "GDJ"}]}
    data = _with_item(_current(own_db), "0802", {**ITEM, "urgency": "urgent", **override})
    _import(own_db, data)
    exported = _current(own_db)
    assert exported == parse_catalogue(data).model_dump(mode="json")
    item = next(
        i
        for c in exported["categories"]
        for s in c["subcategories"]
        for i in s["items"]
        if i["code"] == "0802099"
    )
    assert item["area_departments"] == [{"area_code": "440604011", "department_code": "GDJ"}]
    assert item["urgency"] == "urgent"
    assert json.loads(json.dumps(exported)) == exported  # plain JSON, importable again
    res = own_db.api.get("dispatcher", "/v1/taxonomy")
    assert res.status_code == 200
    subs = {s["code"]: s for c in res.json()["categories"] for s in c["subcategories"]}
    assert "0802099" in {i["code"] for i in subs["0802"]["items"]}
