"""The hierarchy checks of a grid import (grid.consistency), on plain geometry, no database."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from grid.consistency import area_m2, check_hierarchy

LAT = 23.0
M_PER_DEG_LAT = 6_371_007.2 * math.pi / 180.0
M_PER_DEG_LNG = M_PER_DEG_LAT * math.cos(math.radians(LAT))

VILLAGE = "440604010001"
A, B = VILLAGE + "001", VILLAGE + "002"


def _stored() -> dict[str, BaseGeometry]:
    """District, town and village: one 200 m × 100 m box, split into two grids later."""
    outline = box(113.0, LAT, 113.0 + 200 / M_PER_DEG_LNG, LAT + 100 / M_PER_DEG_LAT)
    return {"440604": outline, "440604010": outline, VILLAGE: outline}


def _halves(shift_m: float = 0.0) -> dict[str, BaseGeometry]:
    """The two 100 m × 100 m grids; `shift_m` moves their shared border into B (overlap)."""
    mid = 113.0 + (100 + shift_m) / M_PER_DEG_LNG
    right = 113.0 + 100 / M_PER_DEG_LNG
    top = LAT + 100 / M_PER_DEG_LAT
    return {A: box(113.0, LAT, mid, top), B: box(right, LAT, 113.0 + 200 / M_PER_DEG_LNG, top)}


def test_area_m2_of_a_hectare() -> None:
    sizes = area_m2(np.array([_halves()[A]], dtype=object))
    assert sizes[0] == pytest.approx(10_000, rel=1e-3)


def test_grids_sharing_a_border_are_no_problem() -> None:
    assert check_hierarchy(_halves(), _stored(), tolerance_m2=1.0) == []


def test_overlap_above_the_tolerance_names_both_grids_and_its_size() -> None:
    problems = check_hierarchy(_halves(shift_m=0.05), _stored(), tolerance_m2=1.0)  # 5 m²
    assert len(problems) == 1
    assert problems[0].startswith(f"{A} and {B} overlap by 5.0 m²")


def test_overlap_within_the_tolerance_is_accepted() -> None:
    assert check_hierarchy(_halves(shift_m=0.005), _stored(), tolerance_m2=1.0) == []  # 0.5 m²


def test_incoming_grid_overlapping_a_stored_one_is_named() -> None:
    stored = {**_stored(), B: _halves()[B]}
    problems = check_hierarchy({A: _halves(shift_m=1.0)[A]}, stored, tolerance_m2=1.0)
    assert len(problems) == 1
    assert problems[0].startswith(f"{A} and {B} overlap by 100.0 m²")


def test_gap_in_a_village_is_named_with_its_size() -> None:
    grids = _halves()
    del grids[B]
    problems = check_hierarchy(grids, _stored(), tolerance_m2=1.0)
    assert len(problems) == 1
    assert problems[0].startswith(f"village {VILLAGE}: 10000.0 m² is covered by none of its 1")


def test_village_without_grids_has_no_gap() -> None:
    assert check_hierarchy({VILLAGE: _stored()[VILLAGE]}, _stored(), tolerance_m2=1.0) == []


def test_orphan_names_the_missing_parent() -> None:
    stored = _stored()
    del stored[VILLAGE]
    problems = check_hierarchy(_halves(), stored, tolerance_m2=1.0)
    assert problems == [
        f"{A}: its village {VILLAGE} is neither in the file nor in the database (orphan)",
        f"{B}: its village {VILLAGE} is neither in the file nor in the database (orphan)",
    ]


def test_parent_present_only_as_an_unusable_feature_makes_no_orphan() -> None:
    stored = _stored()
    del stored[VILLAGE]
    assert check_hierarchy(_halves(), stored, tolerance_m2=1.0, also_in_file={VILLAGE}) == []


def test_grid_reaching_outside_its_village_is_named() -> None:
    grids = _halves()
    x0, y0, x1, y1 = grids[B].bounds
    grids[B] = box(x0, y0, x1 + 1 / M_PER_DEG_LNG, y1)  # 1 m further east: 100 m² outside
    problems = check_hierarchy(grids, _stored(), tolerance_m2=1.0)
    assert len(problems) == 1
    assert problems[0].startswith(f"{B}: 100.0 m² lies outside its village {VILLAGE}")


def test_shrunken_village_names_the_stored_grids_left_outside() -> None:
    stored = {**_stored(), **_halves()}
    shrunk = _halves()[A]  # the village redrawn as its first half only
    problems = check_hierarchy({VILLAGE: shrunk}, stored, tolerance_m2=1.0)
    assert len(problems) == 1
    assert problems[0].startswith(f"{B}: 10000.0 m² lies outside its village {VILLAGE}")


def test_problems_among_stored_areas_alone_are_not_the_import_s() -> None:
    stored = {**_stored(), **_halves(shift_m=10.0)}  # already overlapping in the database
    other = box(114.0, 22.0, 114.01, 22.01)
    assert check_hierarchy({"440605": other}, stored, tolerance_m2=1.0) == []
