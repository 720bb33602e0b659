"""Tessellation (grid.tessellate) and polygonal GeoJSON input (grid.geojson)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, box

import grid.tessellate as tessellate_module
from grid.coords import Crs, haversine_m, wgs84_to_gcj02
from grid.geojson import read_features, read_geometry
from grid.tessellate import allocate, tessellate


def assert_partition(region: Polygon | MultiPolygon, cells: list[Polygon | MultiPolygon]) -> None:
    """Cells are non-empty, valid, inside the region, pairwise disjoint, and cover it."""
    area = region.area
    arr = np.asarray(cells, dtype=object)
    assert all(isinstance(c, Polygon | MultiPolygon) for c in cells)
    assert all(c.is_valid and not c.is_empty and c.area > 0 for c in cells)
    assert float(np.max(shapely.area(shapely.difference(arr, region)))) < 1e-9 * area
    left, right = shapely.STRtree(arr).query(arr, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(arr[left[pairs]], arr[right[pairs]]))
    assert float(np.sum(overlap)) < 1e-9 * area
    assert abs(float(np.sum(shapely.area(arr))) - area) < 1e-7 * area
    union = shapely.union_all(arr, grid_size=1e-9)
    assert shapely.symmetric_difference(union, region).area < 1e-7 * area


# --- allocate -----------------------------------------------------------------------------


def test_allocate_largest_remainder() -> None:
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate(7, [0.5, 0.25, 0.25]) == [3, 2, 2]
    assert allocate(100, [3, 1]) == [75, 25]


def test_allocate_gives_each_at_least_one() -> None:
    shares = allocate(5, [1000, 1, 0, 1])
    assert shares == [2, 1, 1, 1]
    assert sum(allocate(921, [float(i % 17) for i in range(139)])) == 921
    assert min(allocate(921, [float(i % 17) for i in range(139)])) >= 1


def test_allocate_all_zero_weights_is_even() -> None:
    assert allocate(6, [0, 0, 0]) == [2, 2, 2]


@pytest.mark.parametrize(
    ("total", "weights"), [(2, [1, 1, 1]), (3, []), (3, [1, -1]), (3, [1, float("nan")])]
)
def test_allocate_rejects_bad_input(total: int, weights: list[float]) -> None:
    with pytest.raises(ValueError, match="."):
        allocate(total, weights)


# --- tessellate ---------------------------------------------------------------------------

SQUARE = box(0.0, 0.0, 10.0, 10.0)
L_SHAPE = Polygon([(0, 0), (6, 0), (6, 2), (2, 2), (2, 6), (0, 6)])
WITH_HOLE = box(0, 0, 4, 4).difference(box(1.5, 1.5, 2.5, 2.5))
ISLANDS = MultiPolygon([box(0, 0, 3, 3), box(5, 0, 6, 1), box(0, 5, 0.2, 5.2)])


@pytest.mark.parametrize("n", [1, 2, 3, 7, 25])
def test_square_gives_exactly_n(n: int) -> None:
    cells = tessellate(SQUARE, n, seed=1)
    assert len(cells) == n
    assert_partition(SQUARE, cells)


@pytest.mark.parametrize(
    ("region", "n"), [(L_SHAPE, 5), (WITH_HOLE, 6), (ISLANDS, 1), (ISLANDS, 2), (ISLANDS, 9)]
)
def test_odd_shapes_and_multipolygons(region: Polygon | MultiPolygon, n: int) -> None:
    cells = tessellate(region, n, seed=7)
    assert len(cells) == n
    assert_partition(region, cells)


def test_projected_coordinates() -> None:
    region = box(500_000.0, 2_500_000.0, 503_000.0, 2_501_000.0)  # metres, e.g. EPSG:4547
    cells = tessellate(region, 12, seed=4)
    assert len(cells) == 12
    assert_partition(region, cells)


def test_many_cells_are_roughly_equal() -> None:
    region = box(113.0, 22.9, 113.1, 23.0)  # lon/lat: x is stretched by cos(lat)
    cells = tessellate(region, 200, seed=3)
    assert len(cells) == 200
    assert_partition(region, cells)
    areas = shapely.area(np.asarray(cells, dtype=object))
    assert areas.std() / areas.mean() < 0.3
    assert areas.min() > 0.25 * areas.mean()


def test_deterministic_for_a_seed() -> None:
    first = [c.wkb for c in tessellate(L_SHAPE, 12, seed=5)]
    again = [c.wkb for c in tessellate(L_SHAPE, 12, seed=5)]
    other = [c.wkb for c in tessellate(L_SHAPE, 12, seed=6)]
    assert first == again
    assert first != other


def test_reading_order_north_west_first() -> None:
    cells = tessellate(SQUARE, 16, seed=2)
    pts = [c.representative_point() for c in cells]
    assert pts[0].y > 5
    assert pts[0].x < 5
    assert pts[-1].y < 5
    assert pts[-1].x > 5
    ys = [p.y for p in pts]
    assert ys[0] > ys[-1]


def test_slivers_and_empty_cells_are_repaired(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force bad seeds (one cell a 0.01-wide strip, one missing the region): still n cells."""
    real = tessellate_module._kmeans_seeds
    bad = np.array([[2.5, 2.5], [2.5, 7.5], [9.88, 5.0], [10.1, 5.0], [30.0, 30.0]])
    calls: list[int] = []

    def seeds(region: Polygon | MultiPolygon, n: int, *args: object) -> np.ndarray:
        calls.append(n)
        return bad if len(calls) == 1 else real(region, n, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(tessellate_module, "_kmeans_seeds", seeds)
    cells = tessellate(SQUARE, 5, seed=1)
    assert calls == [5, 2, 2]  # the strip merged, the empty cell dropped: two re-splits
    assert len(cells) == 5
    assert_partition(SQUARE, cells)
    assert min(c.area for c in cells) > 0.02 * SQUARE.area / 5


def test_tessellate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        tessellate(SQUARE, 0, seed=1)
    with pytest.raises(ValueError, match="Polygon"):
        tessellate(LineString([(0, 0), (1, 1)]), 2, seed=1)
    with pytest.raises(ValueError, match="no area"):
        tessellate(Polygon([(0, 0), (1, 1), (2, 2), (0, 0)]), 2, seed=1)


# --- GeoJSON input ------------------------------------------------------------------------

FOSHAN_BOX = box(113.10, 23.01, 113.12, 23.03)


def _gcj(poly: Polygon) -> Polygon:
    """The same polygon expressed in GCJ-02 (what Amap would give for a WGS-84 survey)."""
    return Polygon([wgs84_to_gcj02(x, y) for x, y in poly.exterior.coords])


def _doc(geom: Polygon | MultiPolygon) -> dict[str, object]:
    return json.loads(shapely.to_geojson(geom))  # type: ignore[no-any-return]


def test_reads_geometry_feature_and_collection() -> None:
    geometry = _doc(FOSHAN_BOX)
    feature = {"type": "Feature", "properties": {"name": "a"}, "geometry": geometry}
    other = {
        "type": "Feature",
        "properties": None,
        "geometry": _doc(box(113.12, 23.01, 113.13, 23.02)),
    }
    point = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [113, 23]},
    }
    collection = {"type": "FeatureCollection", "features": [feature, other, point]}
    assert read_geometry(json.dumps(geometry), crs=Crs.WGS84).equals(FOSHAN_BOX)
    assert read_geometry(json.dumps(feature), crs="wgs84").equals(FOSHAN_BOX)
    union = read_geometry(json.dumps(collection), crs=Crs.WGS84)
    assert union.area == pytest.approx(FOSHAN_BOX.area + 0.0001, rel=1e-9)


def test_gcj02_is_converted_back_to_wgs84(tmp_path: Path) -> None:
    path = tmp_path / "box.geojson"
    path.write_text(json.dumps(_doc(_gcj(FOSHAN_BOX))), encoding="utf-8")
    raw = read_geometry(path, crs=Crs.WGS84)
    converted = read_geometry(path, crs=Crs.GCJ02)
    assert shapely.hausdorff_distance(converted, FOSHAN_BOX) < 1e-8  # ~1 mm
    shift = haversine_m(raw.centroid.x, raw.centroid.y, converted.centroid.x, converted.centroid.y)
    assert 300 < shift < 700
    assert read_geometry(str(path), crs="gcj02").equals(converted)


def test_invalid_polygon_is_repaired() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    geom = read_geometry(json.dumps(bowtie), crs=Crs.WGS84)
    assert geom.is_valid
    assert geom.area == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "neither GeoJSON"),
        ("garbage", "neither GeoJSON"),
        ("/no/such/file.geojson", "neither GeoJSON"),
        ("{not json", "not JSON"),
        ("[1, 2]", "'type'"),
        ('{"type": "Banana"}', "not a GeoJSON geometry"),
        ('{"type": "Polygon", "coordinates": [[1, 2]]}', "malformed"),
        ('{"type": "Polygon", "coordinates": "x"}', "malformed"),
        ('{"type": "Point", "coordinates": [113, 23]}', "no polygonal area"),
        ('{"type": "Polygon", "coordinates": []}', "is empty"),
        ('{"type": "Polygon", "coordinates": [[[0,0],[1,1],[2,2],[0,0]]]}', "no polygonal area"),
        (json.dumps(_doc(box(500000, 2500000, 501000, 2501000))), "longitude/latitude"),
        ('{"type": "FeatureCollection", "features": []}', "no polygonal feature"),
        ('{"type": "FeatureCollection", "features": {}}', "must be a list"),
        ('{"type": "FeatureCollection", "features": [1]}', "not a GeoJSON Feature"),
        ('{"type": "Feature", "geometry": null}', "no polygonal geometry"),
    ],
)
def test_read_geometry_rejects_garbage(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_geometry(text, crs=Crs.WGS84)


def test_read_geometry_rejects_unknown_crs() -> None:
    with pytest.raises(ValueError, match="unknown crs"):
        read_geometry(json.dumps(_doc(FOSHAN_BOX)), crs="EPSG:4547")


def test_read_features_keeps_properties_and_order() -> None:
    a = {"type": "Feature", "properties": {"code": "1"}, "geometry": _doc(_gcj(FOSHAN_BOX))}
    b = {"type": "Feature", "properties": None, "geometry": _doc(box(113.2, 23.0, 113.3, 23.1))}
    text = json.dumps({"type": "FeatureCollection", "features": [a, b]})
    features = read_features(text, crs=Crs.GCJ02)
    assert [props for props, _ in features] == [{"code": "1"}, {}]
    assert shapely.hausdorff_distance(features[0][1], FOSHAN_BOX) < 1e-8
    assert read_features(json.dumps(a), crs=Crs.WGS84)[0][0] == {"code": "1"}
    assert read_features(json.dumps(_doc(FOSHAN_BOX)), crs=Crs.WGS84)[0][0] == {}


def test_read_features_names_the_bad_feature() -> None:
    good = {"type": "Feature", "properties": {}, "geometry": _doc(FOSHAN_BOX)}
    line = {"type": "LineString", "coordinates": [[113, 23], [113.1, 23.1]]}
    bad = {"type": "Feature", "properties": {}, "geometry": line}
    text = json.dumps({"type": "FeatureCollection", "features": [good, bad]})
    with pytest.raises(ValueError, match="feature 1"):
        read_features(text, crs=Crs.WGS84)
    null: dict[str, object] = {"type": "Feature", "properties": {}, "geometry": None}
    with pytest.raises(ValueError, match="feature 0: geometry is null"):
        read_features(json.dumps({"type": "FeatureCollection", "features": [null]}), crs="wgs84")
