"""Placing points in micro-grids (grid.index): inside, on a border, near the edge, outside."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from grid.index import GridIndex, GridShape, Placement, PlacementRule

X0 = 113.1
Y0 = 23.0
STEP = 0.01  # degrees: cells about 1 km across, the size of a small grid
N = 3
TOLERANCE_M = 50.0

# Serial numbers deliberately not in reading order, so "lowest code" is never "first cell".
SERIALS = {
    (0, 0): 5, (1, 0): 2, (2, 0): 8,
    (0, 1): 1, (1, 1): 9, (2, 1): 3,
    (0, 2): 7, (1, 2): 4, (2, 2): 6,
}  # fmt: skip


def line_x(k: int) -> float:
    return X0 + k * STEP


def line_y(k: int) -> float:
    return Y0 + k * STEP


def code(i: int, j: int) -> str:
    return f"440604010001{SERIALS[(i, j)]:03d}"


def block() -> list[GridShape]:
    return [
        GridShape(code(i, j), box(line_x(i), line_y(j), line_x(i + 1), line_y(j + 1)))
        for j in range(N)
        for i in range(N)
    ]


INDEX = GridIndex(block())

# Local metric scale on the WGS-84 ellipsoid (independent of the index's haversine).
_A = 6378137.0
_E2 = 0.00669437999014


def metres_per_degree(lat: float) -> tuple[float, float]:
    """(metres per degree of longitude, metres per degree of latitude) at `lat`."""
    s = math.sin(math.radians(lat))
    w = 1.0 - _E2 * s * s
    meridional = _A * (1.0 - _E2) / w**1.5
    normal = _A / math.sqrt(w)
    return (
        math.radians(1.0) * normal * math.cos(math.radians(lat)),
        math.radians(1.0) * meridional,
    )


def offset(lng: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    m_lng, m_lat = metres_per_degree(lat)
    return lng + east_m / m_lng, lat + north_m / m_lat


def covering_cells(x: float, y: float) -> list[tuple[int, int]]:
    """Oracle: the closed cells containing (x, y), by exact comparison with the lattice lines."""
    return [
        (i, j)
        for j in range(N)
        for i in range(N)
        if line_x(i) <= x <= line_x(i + 1) and line_y(j) <= y <= line_y(j + 1)
    ]


# --- inside ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("i", "j"), sorted(SERIALS))
def test_point_inside_one_grid_is_placed_there(i: int, j: int) -> None:
    x = line_x(i) + 0.3 * STEP
    y = line_y(j) + 0.6 * STEP
    assert INDEX.locate(x, y, tolerance_m=TOLERANCE_M) == Placement(
        code(i, j), PlacementRule.INSIDE, 0.0
    )


def test_inside_placement_does_not_need_a_tolerance() -> None:
    placement = INDEX.locate(line_x(1) + 0.005, line_y(1) + 0.005, tolerance_m=0.0)
    assert placement == Placement(code(1, 1), PlacementRule.INSIDE, 0.0)


# --- border ---------------------------------------------------------------------------------


def _shared_edges() -> list[tuple[float, float, str]]:
    """(lng, lat, expected code) at the middle of every edge shared by two cells."""
    edges = []
    for j in range(N):
        for k in range(1, N):  # vertical edge between (k-1, j) and (k, j)
            expected = min(code(k - 1, j), code(k, j))
            edges.append((line_x(k), line_y(j) + STEP / 2, expected))
    for i in range(N):
        for k in range(1, N):  # horizontal edge between (i, k-1) and (i, k)
            expected = min(code(i, k - 1), code(i, k))
            edges.append((line_x(i) + STEP / 2, line_y(k), expected))
    return edges


@pytest.mark.parametrize(("lng", "lat", "expected"), _shared_edges())
def test_point_on_shared_edge_goes_to_lowest_code_of_the_two(
    lng: float, lat: float, expected: str
) -> None:
    assert INDEX.locate(lng, lat, tolerance_m=TOLERANCE_M) == Placement(
        expected, PlacementRule.BORDER, 0.0
    )


@pytest.mark.parametrize(("kx", "ky"), [(1, 1), (1, 2), (2, 1), (2, 2)])
def test_point_on_corner_shared_by_four_goes_to_lowest_code_of_the_four(kx: int, ky: int) -> None:
    four = [code(kx - 1, ky - 1), code(kx, ky - 1), code(kx - 1, ky), code(kx, ky)]
    placement = INDEX.locate(line_x(kx), line_y(ky), tolerance_m=TOLERANCE_M)
    assert placement == Placement(min(four), PlacementRule.BORDER, 0.0)


def test_point_on_outer_edge_of_one_grid_is_inside_that_grid() -> None:
    placement = INDEX.locate(line_x(N), line_y(1) + STEP / 2, tolerance_m=TOLERANCE_M)
    assert placement == Placement(code(N - 1, 1), PlacementRule.INSIDE, 0.0)


def _probe_points() -> list[tuple[float, float]]:
    points = [(lng, lat) for lng, lat, _ in _shared_edges()]
    points += [(line_x(kx), line_y(ky)) for kx in range(N + 1) for ky in range(N + 1)]
    points += [(line_x(i) + 0.004, line_y(j) + 0.007) for i in range(N) for j in range(N)]
    points += [offset(line_x(N), line_y(1), 20.0, 0.0), offset(line_x(0), line_y(0), -25.0, -5.0)]
    return points


@pytest.mark.parametrize("seed", range(5))
def test_placement_does_not_depend_on_the_order_grids_are_given(seed: int) -> None:
    shuffled = block()
    random.Random(seed).shuffle(shuffled)
    other = GridIndex(shuffled)
    for lng, lat in _probe_points():
        assert other.locate(lng, lat, tolerance_m=TOLERANCE_M) == INDEX.locate(
            lng, lat, tolerance_m=TOLERANCE_M
        )
    lngs, lats = zip(*_probe_points(), strict=True)
    assert other.locate_many(lngs, lats, tolerance_m=TOLERANCE_M) == INDEX.locate_many(
        lngs, lats, tolerance_m=TOLERANCE_M
    )


# --- near the edge / outside -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "east_m", "north_m", "expected"),
    [
        ((line_x(N), line_y(1) + STEP / 2), 30.0, 0.0, code(2, 1)),  # east of the block
        ((line_x(0), line_y(2) + STEP / 2), -45.0, 0.0, code(0, 2)),  # west
        ((line_x(1) + STEP / 2, line_y(N)), 0.0, 20.0, code(1, 2)),  # north
        ((line_x(2) + STEP / 2, line_y(0)), 0.0, -40.0, code(2, 0)),  # south
        ((line_x(N), line_y(N)), 30.0, 30.0, code(2, 2)),  # diagonal off the NE corner
        ((line_x(0), line_y(0)), -10.0, -5.0, code(0, 0)),  # diagonal off the SW corner
    ],
)
def test_point_just_outside_goes_to_nearest_grid_with_its_metric_distance(
    anchor: tuple[float, float], east_m: float, north_m: float, expected: str
) -> None:
    lng, lat = offset(*anchor, east_m, north_m)
    placement = INDEX.locate(lng, lat, tolerance_m=TOLERANCE_M)
    assert placement is not None
    assert placement.grid_code == expected
    assert placement.rule is PlacementRule.NEAREST
    assert placement.distance_m == pytest.approx(math.hypot(east_m, north_m), rel=0.02)


@pytest.mark.parametrize(
    ("anchor", "east_m", "north_m"),
    [
        ((line_x(N), line_y(1) + STEP / 2), 60.0, 0.0),
        ((line_x(1) + STEP / 2, line_y(0)), 0.0, -55.0),
        ((line_x(N), line_y(N)), 40.0, 40.0),  # each axis < 50 m, but 56.6 m away
        ((line_x(0), line_y(0)), -5_000.0, -5_000.0),
    ],
)
def test_point_beyond_tolerance_is_not_placed(
    anchor: tuple[float, float], east_m: float, north_m: float
) -> None:
    lng, lat = offset(*anchor, east_m, north_m)
    assert INDEX.locate(lng, lat, tolerance_m=TOLERANCE_M) is None


def test_zero_tolerance_places_nothing_outside_the_grids() -> None:
    lng, lat = offset(line_x(N), line_y(1) + STEP / 2, 1.0, 0.0)
    assert INDEX.locate(lng, lat, tolerance_m=0.0) is None
    assert INDEX.locate_many([lng], [lat], tolerance_m=0.0) == [None]


def test_equidistant_outside_point_goes_to_lowest_code() -> None:
    # East of the block, level with the corner shared by (2, 0) and (2, 1): same distance to both.
    lng, lat = offset(line_x(N), line_y(1), 20.0, 0.0)
    assert lat == line_y(1)
    placement = INDEX.locate(lng, lat, tolerance_m=TOLERANCE_M)
    assert placement is not None
    assert placement.rule is PlacementRule.NEAREST
    assert placement.grid_code == min(code(2, 0), code(2, 1))


@pytest.mark.parametrize(("north_m", "expected"), [(8.0, code(2, 1)), (-8.0, code(2, 0))])
def test_outside_point_goes_to_the_closer_grid_not_the_lower_code(
    north_m: float, expected: str
) -> None:
    lng, lat = offset(line_x(N), line_y(1), 20.0, north_m)
    placement = INDEX.locate(lng, lat, tolerance_m=TOLERANCE_M)
    assert placement is not None
    assert placement.grid_code == expected


def test_gap_between_grids_goes_to_nearest_grid() -> None:
    # Two grids 60 m apart: a point 20 m from the left one and 40 m from the right one.
    left = box(X0, Y0, X0 + STEP, Y0 + STEP)
    gap_lng, _ = offset(X0 + STEP, Y0, 60.0, 0.0)
    right = box(gap_lng, Y0, gap_lng + STEP, Y0 + STEP)
    index = GridIndex([GridShape("440604010001002", right), GridShape("440604010001009", left)])
    lng, lat = offset(X0 + STEP, Y0 + STEP / 2, 20.0, 0.0)
    placement = index.locate(lng, lat, tolerance_m=TOLERANCE_M)
    assert placement is not None
    assert placement.grid_code == "440604010001009"
    assert placement.distance_m == pytest.approx(20.0, rel=0.02)


# --- many at once ----------------------------------------------------------------------------

LATTICE_X = [line_x(k) for k in range(N + 1)]
LATTICE_Y = [line_y(k) for k in range(N + 1)]
MARGIN = 0.002  # about 200 m: inside, near (< 50 m) and far (> 50 m) outside points
COORD_X = st.one_of(
    st.sampled_from(LATTICE_X),
    st.floats(min_value=X0 - MARGIN, max_value=line_x(N) + MARGIN),
)
COORD_Y = st.one_of(
    st.sampled_from(LATTICE_Y),
    st.floats(min_value=Y0 - MARGIN, max_value=line_y(N) + MARGIN),
)
POINTS = st.lists(st.tuples(COORD_X, COORD_Y), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(points=POINTS)
def test_locate_many_equals_locate_point_by_point(points: list[tuple[float, float]]) -> None:
    lngs = [p[0] for p in points]
    lats = [p[1] for p in points]
    one_by_one = [INDEX.locate(x, y, tolerance_m=TOLERANCE_M) for x, y in points]
    assert INDEX.locate_many(lngs, lats, tolerance_m=TOLERANCE_M) == one_by_one


@settings(max_examples=300, deadline=None)
@given(x=COORD_X, y=COORD_Y)
def test_placement_follows_the_rule_for_every_point(x: float, y: float) -> None:
    placement = INDEX.locate(x, y, tolerance_m=TOLERANCE_M)
    cells = covering_cells(x, y)
    if len(cells) == 1:
        assert placement == Placement(code(*cells[0]), PlacementRule.INSIDE, 0.0)
    elif cells:
        expected = min(code(i, j) for i, j in cells)
        assert placement == Placement(expected, PlacementRule.BORDER, 0.0)
    elif placement is not None:
        assert placement.rule is PlacementRule.NEAREST
        assert 0.0 < placement.distance_m <= TOLERANCE_M


def test_locate_many_of_no_points_is_empty() -> None:
    assert INDEX.locate_many([], [], tolerance_m=TOLERANCE_M) == []


# --- empty index -----------------------------------------------------------------------------


def test_empty_index_places_nothing() -> None:
    empty = GridIndex([])
    assert len(empty) == 0
    assert empty.locate(X0 + 0.005, Y0 + 0.005, tolerance_m=TOLERANCE_M) is None
    assert empty.locate_many([X0 + 0.005, X0], [Y0 + 0.005, Y0], tolerance_m=TOLERANCE_M) == [
        None,
        None,
    ]
