"""The 禅城区 demo hierarchy (grid.demo_district): counts, codes, nesting, a clean partition."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib.resources import files

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from grid.coords import haversine_m
from grid.demo_district import Area, District, build_chancheng

TOWN_CODES = {
    "440604010": "祖庙街道",
    "440604011": "石湾镇街道",
    "440604012": "张槎街道",
    "440604100": "南庄镇",
}
VILLAGES_PER_TOWN = {"440604010": 43, "440604011": 37, "440604012": 30, "440604100": 29}


@pytest.fixture(scope="module")
def district() -> District:
    return build_chancheng()


def _geoms(areas: list[Area]) -> np.ndarray:
    return np.asarray([a.geometry for a in areas], dtype=object)


def _levels(d: District) -> list[tuple[list[Area], list[Area]]]:
    return [([d.district], d.towns), (d.towns, d.villages), (d.villages, d.grids)]


def test_counts(district: District) -> None:
    assert len(district.towns) == 4
    assert len(district.villages) == 139
    assert len(district.grids) == 921
    assert len(district.areas()) == 1 + 4 + 139 + 921


def test_towns_are_the_real_ones(district: District) -> None:
    assert district.district.code == "440604"
    assert district.district.name == "禅城区"
    assert {t.code: t.name for t in district.towns} == TOWN_CODES
    per_town = Counter(v.parent_code for v in district.villages)
    assert per_town == VILLAGES_PER_TOWN


def test_towns_are_roughly_in_place(district: District) -> None:
    c = {t.name: t.geometry.centroid for t in district.towns}
    assert c["祖庙街道"].x > c["张槎街道"].x  # 祖庙 east of 张槎
    assert c["祖庙街道"].y > c["石湾镇街道"].y  # 石湾 south(-east) of 祖庙
    assert c["石湾镇街道"].x > c["南庄镇"].x
    assert c["张槎街道"].y > c["南庄镇"].y  # 张槎 north-west, 南庄 west / south-west
    assert c["南庄镇"].x < min(p.x for p in c.values() if p is not c["南庄镇"])
    for town in district.towns:  # each a plausible share, none swallowing the district
        assert 0.1 < town.geometry.area / district.district.geometry.area < 0.5


def test_levels_and_code_lengths(district: District) -> None:
    expect = [
        (district.district, "district", 6),
        *[(t, "town", 9) for t in district.towns],
        *[(v, "village", 12) for v in district.villages],
        *[(g, "grid", 15) for g in district.grids],
    ]
    for area, level, length in expect:
        assert area.level == level
        assert re.fullmatch(rf"\d{{{length}}}", area.code), area.code


def test_codes_unique_nested_and_sorted(district: District) -> None:
    codes = [a.code for a in district.areas()]
    assert len(set(codes)) == len(codes)
    assert district.district.parent_code is None
    for parents, children in _levels(district):
        parent_codes = {p.code for p in parents}
        for child in children:
            assert child.parent_code in parent_codes
            assert child.code[:-3] == child.parent_code
    for level in (district.towns, district.villages, district.grids):
        assert [a.code for a in level] == sorted(a.code for a in level)


def test_village_serials_follow_kind(district: District) -> None:
    kinds: Counter[tuple[str, str]] = Counter()
    for village in district.villages:
        serial = int(village.code[-3:])
        if village.name.endswith("社区"):
            assert 1 <= serial <= 199, village
            kinds[(village.code[:9], "社区")] += 1
        else:
            assert village.name.endswith("村"), village.name
            assert 200 <= serial <= 399, village
            kinds[(village.code[:9], "村")] += 1
    assert kinds[("440604010", "社区")] > kinds[("440604010", "村")]  # urban 祖庙
    assert kinds[("440604011", "社区")] > kinds[("440604011", "村")]  # urban 石湾
    assert kinds[("440604012", "村")] > kinds[("440604012", "社区")]  # 张槎 mostly 村
    assert kinds[("440604100", "村")] > kinds[("440604100", "社区")]  # 南庄 mostly 村


def test_serials_are_consecutive(district: District) -> None:
    by_parent: dict[str, list[int]] = {}
    for grid in district.grids:
        by_parent.setdefault(grid.code[:12], []).append(int(grid.code[-3:]))
    assert set(by_parent) == {v.code for v in district.villages}
    for serials in by_parent.values():
        assert serials == list(range(1, len(serials) + 1))
    for town in district.towns:
        serials = [int(v.code[-3:]) for v in district.villages if v.parent_code == town.code]
        communities = [s for s in serials if s < 200]
        villages = [s for s in serials if s >= 200]
        assert communities == list(range(1, len(communities) + 1))
        assert villages == list(range(201, 201 + len(villages)))


def test_names(district: District) -> None:
    names = [v.name for v in district.villages]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2}(社区|村)", n) for n in names)
    villages = {v.code: v.name for v in district.villages}
    for grid in district.grids:
        assert grid.name == f"{villages[grid.parent_code or '']}第{int(grid.code[-3:])}网格"


def test_every_village_has_a_grid_and_grids_follow_area(district: District) -> None:
    counts = Counter(g.parent_code for g in district.grids)
    assert min(counts.values()) >= 1
    biggest = max(district.villages, key=lambda v: v.geometry.area)
    smallest = min(district.villages, key=lambda v: v.geometry.area)
    assert counts[biggest.code] > counts[smallest.code]


def test_geometries_valid_and_polygonal(district: District) -> None:
    for area in district.areas():
        assert area.geometry.geom_type in {"Polygon", "MultiPolygon"}
        assert area.geometry.is_valid, area.code
        assert area.geometry.area > 0


def test_children_inside_parent(district: District) -> None:
    for parents, children in _levels(district):
        by_code = {p.code: p.geometry for p in parents}
        parent_geoms = np.asarray([by_code[c.parent_code or ""] for c in children], dtype=object)
        outside = shapely.area(shapely.difference(_geoms(children), parent_geoms))
        assert np.all(outside < 1e-9 * shapely.area(parent_geoms))


def test_siblings_do_not_overlap(district: District) -> None:
    for parents, children in _levels(district):
        parent_area = {p.code: p.geometry.area for p in parents}
        geoms = _geoms(children)
        left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        keep = left < right
        left, right = left[keep], right[keep]
        overlap = shapely.area(shapely.intersection(geoms[left], geoms[right]))
        for i, area in zip(left, overlap, strict=True):
            assert area < 1e-9 * parent_area[children[i].parent_code or ""]


def test_children_areas_sum_to_parent(district: District) -> None:
    for parents, children in _levels(district):
        total: dict[str, float] = {}
        for child in children:
            key = child.parent_code or ""
            total[key] = total.get(key, 0.0) + child.geometry.area
        for parent in parents:
            assert total[parent.code] == pytest.approx(parent.geometry.area, rel=1e-7)


def test_grids_cover_the_district(district: District) -> None:
    outline = district.district.geometry
    union = shapely.union_all(_geoms(district.grids), grid_size=1e-9)
    assert shapely.symmetric_difference(union, outline).area < 1e-7 * outline.area


def test_outline_converted_from_gcj02(district: District) -> None:
    text = files("grid").joinpath("data/440604.geojson").read_text(encoding="utf-8")
    raw = shape(json.loads(text))
    converted = district.district.geometry
    shift = haversine_m(raw.centroid.x, raw.centroid.y, converted.centroid.x, converted.centroid.y)
    assert 300 < shift < 700
    assert converted.area == pytest.approx(raw.area, rel=1e-2)  # a shift, not a distortion


def test_cached_and_deterministic(district: District) -> None:
    assert build_chancheng() is district
    fresh = build_chancheng.__wrapped__()
    assert fresh is not district
    assert [(a.code, a.name, a.parent_code) for a in fresh.areas()] == [
        (a.code, a.name, a.parent_code) for a in district.areas()
    ]
    assert [a.geometry.wkb for a in fresh.areas()] == [a.geometry.wkb for a in district.areas()]
