"""GCJ-02 <-> WGS-84 conversion (grid.coords): pure functions, no database."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grid.coords import (
    Crs,
    gcj02_to_wgs84,
    gcj02_to_wgs84_array,
    haversine_m,
    parse_crs,
    to_wgs84,
    wgs84_to_gcj02,
    wgs84_to_gcj02_array,
)

CHINA_LNG = st.floats(min_value=73.0, max_value=135.0, allow_nan=False, allow_infinity=False)
CHINA_LAT = st.floats(min_value=18.0, max_value=53.0, allow_nan=False, allow_infinity=False)
FOSHAN = (113.1, 23.0)


def naive_inverse(lng: float, lat: float) -> tuple[float, float]:
    """The one-step inverse: subtract the forward offset evaluated at the GCJ-02 point itself."""
    f_lng, f_lat = wgs84_to_gcj02(lng, lat)
    return lng - (f_lng - lng), lat - (f_lat - lat)


@settings(max_examples=300, deadline=None)
@given(lng=CHINA_LNG, lat=CHINA_LAT)
def test_gcj02_round_trip_error_is_below_a_centimetre_in_china(lng: float, lat: float) -> None:
    back_lng, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lng, lat))
    assert haversine_m(lng, lat, back_lng, back_lat) < 0.01


@settings(max_examples=100, deadline=None)
@given(lng=CHINA_LNG, lat=CHINA_LAT)
def test_gcj02_inverse_then_forward_returns_the_gcj02_point(lng: float, lat: float) -> None:
    w_lng, w_lat = gcj02_to_wgs84(lng, lat)
    assert haversine_m(lng, lat, *wgs84_to_gcj02(w_lng, w_lat)) < 0.01


def test_vectorised_round_trip_matches_scalar_round_trip() -> None:
    rng = np.random.default_rng(20260101)
    lngs = rng.uniform(73.0, 135.0, 500)
    lats = rng.uniform(18.0, 53.0, 500)
    back_lngs, back_lats = gcj02_to_wgs84_array(*wgs84_to_gcj02_array(lngs, lats))
    for i in range(0, 500, 50):
        scalar = gcj02_to_wgs84(*wgs84_to_gcj02(float(lngs[i]), float(lats[i])))
        assert haversine_m(*scalar, float(back_lngs[i]), float(back_lats[i])) < 1e-3
    worst = max(
        haversine_m(float(a), float(b), float(c), float(d))
        for a, b, c, d in zip(lngs, lats, back_lngs, back_lats, strict=True)
    )
    assert worst < 0.01


def test_forward_offset_in_foshan_is_between_300_and_700_metres() -> None:
    g_lng, g_lat = wgs84_to_gcj02(*FOSHAN)
    assert 300.0 < haversine_m(*FOSHAN, g_lng, g_lat) < 700.0


@pytest.mark.parametrize(
    ("lng", "lat"),
    [
        (2.3522, 48.8566),  # Paris
        (-74.006, 40.7128),  # New York
        (151.2093, -33.8688),  # Sydney
        (139.6917, 60.0),  # north of the box
        (70.0, 30.0),  # west of the box
    ],
)
def test_transform_is_identity_outside_china(lng: float, lat: float) -> None:
    assert wgs84_to_gcj02(lng, lat) == (lng, lat)
    assert gcj02_to_wgs84(lng, lat) == (lng, lat)


@pytest.mark.parametrize(
    ("spelling", "crs"),
    [
        ("wgs84", Crs.WGS84),
        ("WGS84", Crs.WGS84),
        ("WGS-84", Crs.WGS84),
        ("EPSG:4326", Crs.WGS84),
        ("epsg:4326", Crs.WGS84),
        ("gcj02", Crs.GCJ02),
        ("GCJ-02", Crs.GCJ02),
        ("gcj-02", Crs.GCJ02),
        ("  GCJ02 ", Crs.GCJ02),
    ],
)
def test_parse_crs_accepts_common_spellings(spelling: str, crs: Crs) -> None:
    assert parse_crs(spelling) is crs


@pytest.mark.parametrize("junk", ["", "bd09", "EPSG:3857", "wgs", "gcj03", "4547", "mercator"])
def test_parse_crs_rejects_unknown_names(junk: str) -> None:
    with pytest.raises(ValueError, match="unknown crs"):
        parse_crs(junk)


def test_to_wgs84_leaves_wgs84_points_unchanged() -> None:
    assert to_wgs84(113.123456, 23.012345, Crs.WGS84) == (113.123456, 23.012345)


def test_to_wgs84_converts_gcj02_points_back_to_the_gps_position() -> None:
    g_lng, g_lat = wgs84_to_gcj02(*FOSHAN)
    w_lng, w_lat = to_wgs84(g_lng, g_lat, Crs.GCJ02)
    assert haversine_m(*FOSHAN, w_lng, w_lat) < 0.01


def test_naive_one_step_inverse_is_measurably_worse_than_the_iterative_one() -> None:
    rng = np.random.default_rng(7)
    naive_errors: list[float] = []
    iterative_errors: list[float] = []
    for lng, lat in zip(rng.uniform(73, 135, 400), rng.uniform(18, 53, 400), strict=True):
        g = wgs84_to_gcj02(float(lng), float(lat))
        naive_errors.append(haversine_m(lng, lat, *naive_inverse(*g)))
        iterative_errors.append(haversine_m(lng, lat, *gcj02_to_wgs84(*g)))
    assert max(iterative_errors) < 0.01
    assert max(naive_errors) > 1.0  # metres: enough to matter near a micro-grid border
    assert sum(naive_errors) > 1000 * sum(iterative_errors)


@settings(max_examples=100, deadline=None)
@given(lng=CHINA_LNG, lat=CHINA_LAT)
def test_iterative_inverse_is_never_worse_than_the_naive_one(lng: float, lat: float) -> None:
    g = wgs84_to_gcj02(lng, lat)
    iterative = haversine_m(lng, lat, *gcj02_to_wgs84(*g))
    naive = haversine_m(lng, lat, *naive_inverse(*g))
    assert iterative <= naive + 1e-6


def test_haversine_of_one_degree_of_latitude_is_about_111_km() -> None:
    assert haversine_m(113.0, 23.0, 113.0, 24.0) == pytest.approx(111_195, rel=1e-3)
