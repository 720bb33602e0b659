"""The packaged catalogue: the 17 fixed categories, 133 subcategories, owners and time limits."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pydantic
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col

from dispatch.models import Department
from taxonomy.catalogue import (
    Catalogue,
    TimeUnit,
    Urgency,
    load_default_catalogue,
    parse_catalogue,
)

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_JSON = ROOT / "taxonomy" / "data" / "catalogue.json"

# DOMAIN.md, "The 17 top-level categories used by this project"
EXPECTED_CATEGORIES = {
    "01": "矛盾纠纷",
    "02": "治安隐患",
    "03": "安全生产",
    "04": "消防安全",
    "05": "道路交通",
    "06": "市容环境",
    "07": "环境保护",
    "08": "公共设施",
    "09": "违法建设",
    "10": "食品药品安全",
    "11": "市场监管",
    "12": "公共卫生",
    "13": "劳动保障",
    "14": "人口房屋",
    "15": "特殊人群",
    "16": "应急灾害",
    "17": "民生服务",
}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_default_catalogue()


def _raw() -> dict[str, Any]:
    """A fresh, mutable copy of the packaged JSON, for corrupting in tests."""
    data: dict[str, Any] = json.loads(CATALOGUE_JSON.read_text(encoding="utf-8"))
    return data


def _by_name(catalogue: Catalogue, name: str) -> str:
    matches = [sub.code for _, sub in catalogue.iter_subcategories() if sub.name == name]
    assert len(matches) == 1, name
    return matches[0]


def test_seventeen_categories_with_fixed_codes_and_names(catalogue: Catalogue) -> None:
    assert {c.code: c.name for c in catalogue.categories} == EXPECTED_CATEGORIES
    assert [c.code for c in catalogue.categories] == sorted(EXPECTED_CATEGORIES)


def test_exactly_133_subcategories(catalogue: Catalogue) -> None:
    assert sum(len(c.subcategories) for c in catalogue.categories) == 133
    assert len(list(catalogue.iter_subcategories())) == 133
    for cat in catalogue.categories:
        assert 6 <= len(cat.subcategories) <= 11, cat.code


def test_subcategory_codes_are_category_code_plus_serial(catalogue: Catalogue) -> None:
    for cat in catalogue.categories:
        codes = [sub.code for sub in cat.subcategories]
        assert codes == [f"{cat.code}{i:02d}" for i in range(1, len(codes) + 1)]


def test_only_the_last_subcategory_may_be_a_catch_all(catalogue: Catalogue) -> None:
    for cat in catalogue.categories:
        assert not any(sub.is_catch_all for sub in cat.subcategories[:-1]), cat.code
    last_17 = catalogue.categories[-1].subcategories[-1]
    assert last_17.is_catch_all
    assert last_17.name.startswith("其他")


def test_names_unique(catalogue: Catalogue) -> None:
    names = [sub.name for _, sub in catalogue.iter_subcategories()]
    assert len(names) == len(set(names))


def test_keywords_are_real_words(catalogue: Catalogue) -> None:
    han = re.compile(r"[\u4e00-\u9fff]")
    for _, sub in catalogue.iter_subcategories():
        assert 5 <= len(sub.keywords) <= 15, sub.code
        assert len(set(sub.keywords)) == len(sub.keywords), sub.code
        assert all(k == k.strip() and k for k in sub.keywords), sub.code
        assert sum(bool(han.search(k)) for k in sub.keywords) >= 5, sub.code


def test_department_codes_exist_in_the_migrated_database(
    catalogue: Catalogue, engine: Engine
) -> None:
    with engine.connect() as conn:
        known = set(conn.scalars(select(col(Department.code))))
    used = {sub.department_code for _, sub in catalogue.iter_subcategories()}
    assert used <= known, used - known
    assert len(used) >= 12  # the catalogue really spreads work over the departments


def test_time_limits_valid(catalogue: Catalogue) -> None:
    for _, sub in catalogue.iter_subcategories():
        assert sub.time_limit.value > 0
        assert sub.time_limit.unit in set(TimeUnit)
        assert sub.urgency in set(Urgency)
        if sub.urgency is Urgency.EMERGENCY:
            assert sub.time_limit.unit is TimeUnit.NATURAL_HOURS, sub.code
            assert sub.time_limit.value <= 4, sub.code


@pytest.mark.parametrize(
    ("name", "value", "unit"),
    [
        ("暴露垃圾", 4, TimeUnit.WORKING_HOURS),
        ("道路不洁", 5, TimeUnit.WORKING_HOURS),
        ("私搭乱建", 7, TimeUnit.WORKING_DAYS),
        ("违法建设正在施工", 4, TimeUnit.WORKING_HOURS),
        ("政策咨询", 3, TimeUnit.WORKING_DAYS),
    ],
)
def test_time_limits_follow_local_rules(
    catalogue: Catalogue, name: str, value: int, unit: TimeUnit
) -> None:
    sub = catalogue.subcategory(_by_name(catalogue, name))
    assert sub is not None
    assert (sub.time_limit.value, sub.time_limit.unit) == (value, unit)


def test_required_subcategories_present(catalogue: Catalogue) -> None:
    manhole = catalogue.subcategory("0801")
    assert manhole is not None
    assert manhole.name == "井盖缺失破损"
    assert "井盖" in manhole.keywords
    assert manhole.department_code == "CGJ"
    mosquito = [sub for sub in catalogue.categories[11].subcategories if "积水" in sub.keywords]
    assert len(mosquito) == 1
    assert {"登革热", "基孔肯雅热", "蚊子"} <= set(mosquito[0].keywords)
    names = {sub.name for sub in catalogue.categories[7].subcategories}
    assert {"路灯故障", "护栏损坏", "健身器材损坏"} <= names


def test_lookups(catalogue: Catalogue) -> None:
    cat = catalogue.category("08")
    assert cat is not None
    assert cat.name == "公共设施"
    assert catalogue.category("18") is None
    assert catalogue.subcategory("0899") is None
    assert catalogue.subcategory("") is None
    assert catalogue.category_of("0801") is cat
    with pytest.raises(KeyError, match="0899"):
        catalogue.category_of("0899")


def test_default_catalogue_is_cached_and_frozen(catalogue: Catalogue) -> None:
    assert load_default_catalogue() is catalogue
    with pytest.raises(pydantic.ValidationError):
        catalogue.version = 2  # type: ignore[misc]


def test_round_trip_through_json(catalogue: Catalogue) -> None:
    again = parse_catalogue(json.loads(json.dumps(catalogue.model_dump(mode="json"))))
    assert again == catalogue
    assert again.subcategory("1201") == catalogue.subcategory("1201")


def test_parse_rejects_non_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        parse_catalogue([])  # type: ignore[arg-type]


def test_parse_rejects_duplicate_category_code() -> None:
    data = _raw()
    data["categories"].append(data["categories"][0])
    with pytest.raises(ValueError, match="duplicate category code 01"):
        parse_catalogue(data)


def test_parse_rejects_duplicate_subcategory_code() -> None:
    data = _raw()
    subs = data["categories"][7]["subcategories"]
    subs[1]["code"] = subs[0]["code"]
    with pytest.raises(ValueError, match="duplicate subcategory code 0801"):
        parse_catalogue(data)


def test_parse_rejects_wrong_prefix() -> None:
    data = _raw()
    data["categories"][3]["subcategories"][2]["code"] = "0503"
    with pytest.raises(ValueError, match=r"categories\[3\]\(code '04'\).*0503.*04"):
        parse_catalogue(data)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("department_code", "  ", "department_code"),
        ("time_limit", {"value": 0, "unit": "working_days"}, r"time_limit\.value"),
        ("time_limit", {"value": 3, "unit": "hours"}, r"time_limit\.unit"),
        ("urgency", "whenever", "urgency"),
        ("code", "080", r"subcategories\[0\]\(code '080'\)\.code"),
        ("keywords", ["井盖", " "], "blank"),
        ("colour", "red", "colour"),
    ],
)
def test_parse_reports_bad_fields_with_their_path(field: str, value: object, message: str) -> None:
    data = _raw()
    data["categories"][7]["subcategories"][0][field] = value
    with pytest.raises(ValueError, match=message) as info:
        parse_catalogue(data)
    assert str(info.value).startswith("invalid catalogue:")
    assert "categories[7](code '08')" in str(info.value)


def test_parse_rejects_empty_catalogue_and_category() -> None:
    with pytest.raises(ValueError, match="categories"):
        parse_catalogue({"version": 1, "categories": []})
    data = _raw()
    data["categories"][0]["subcategories"] = []
    with pytest.raises(ValueError, match="subcategories"):
        parse_catalogue(data)
