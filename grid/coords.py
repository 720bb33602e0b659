"""Coordinate reference systems: WGS-84 (GPS, storage) and GCJ-02 (Chinese web maps, WeChat).

GCJ-02 is a published obfuscation of WGS-84 inside China. The forward transform is closed
form; its inverse is not, so we invert it by fixed-point iteration, which converges to well
under a millimetre in a few steps (the naive one-step inverse leaves about 3 m of error).
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
import numpy.typing as npt

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared

FloatArray = npt.NDArray[np.float64]


class Crs(StrEnum):
    """Coordinate systems accepted on input; storage is always WGS-84."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"


def parse_crs(value: str) -> Crs:
    """Map the spellings users send ("WGS84", "EPSG:4326", "gcj-02", ...) to a Crs, or raise."""
    key = value.strip().lower().replace("-", "").replace("_", "")
    aliases = {
        "wgs84": Crs.WGS84,
        "epsg:4326": Crs.WGS84,
        "4326": Crs.WGS84,
        "cgcs2000": Crs.WGS84,
        "epsg:4490": Crs.WGS84,
        "gcj02": Crs.GCJ02,
        "gcj": Crs.GCJ02,
        "mars": Crs.GCJ02,
    }
    try:
        return aliases[key]
    except KeyError:
        raise ValueError(f"unknown crs {value!r}; use wgs84 or gcj02") from None


def out_of_china(lng: FloatArray | float, lat: FloatArray | float) -> npt.NDArray[np.bool_]:
    """GCJ-02 applies only inside China's rough bounding box; outside it equals WGS-84."""
    lng_a = np.asarray(lng, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    return (lng_a < 72.004) | (lng_a > 137.8347) | (lat_a < 0.8293) | (lat_a > 55.8271)


def _delta(lng: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    x = lng - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat += (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat += (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * math.pi) + 320.0 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlng += (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlng += (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlng += (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * math.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlng = (dlng * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * math.pi)
    inside = ~out_of_china(lng, lat)
    return np.where(inside, dlng, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02_array(lng: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Vectorised forward transform."""
    lng = np.asarray(lng, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    dlng, dlat = _delta(lng, lat)
    return lng + dlng, lat + dlat


def gcj02_to_wgs84_array(
    lng: FloatArray, lat: FloatArray, *, tolerance_deg: float = 1e-10, max_iter: int = 30
) -> tuple[FloatArray, FloatArray]:
    """Vectorised iterative inverse: find w with forward(w) == g, to ~1e-10 degrees (~0.01 mm)."""
    g_lng = np.asarray(lng, dtype=np.float64)
    g_lat = np.asarray(lat, dtype=np.float64)
    w_lng = g_lng.copy()
    w_lat = g_lat.copy()
    for _ in range(max_iter):
        f_lng, f_lat = wgs84_to_gcj02_array(w_lng, w_lat)
        e_lng = f_lng - g_lng
        e_lat = f_lat - g_lat
        w_lng = w_lng - e_lng
        w_lat = w_lat - e_lat
        if float(np.max(np.abs(e_lng), initial=0.0)) < tolerance_deg and (
            float(np.max(np.abs(e_lat), initial=0.0)) < tolerance_deg
        ):
            break
    return w_lng, w_lat


def wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    g_lng, g_lat = wgs84_to_gcj02_array(np.array([lng]), np.array([lat]))
    return float(g_lng[0]), float(g_lat[0])


def gcj02_to_wgs84(lng: float, lat: float) -> tuple[float, float]:
    w_lng, w_lat = gcj02_to_wgs84_array(np.array([lng]), np.array([lat]))
    return float(w_lng[0]), float(w_lat[0])


def to_wgs84(lng: float, lat: float, crs: Crs) -> tuple[float, float]:
    """The one conversion path for input points: any accepted CRS to stored WGS-84."""
    if crs is Crs.GCJ02:
        return gcj02_to_wgs84(lng, lat)
    return lng, lat


def haversine_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Great-circle distance in metres (WGS-84 mean radius)."""
    r = 6371008.8
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(min(1.0, h)))
