"""Read polygonal GeoJSON (Geometry, Feature or FeatureCollection) into WGS-84 shapely geometry.

Storage is WGS-84 only, so the caller must say which CRS the file is in: outlines taken from
Chinese web maps (Amap, Tencent) are GCJ-02 and are converted vertex by vertex here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import shape

from grid.coords import Crs, gcj02_to_wgs84_array, parse_crs
from grid.tessellate import Polygonal, polygonal_part

_GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}

Source = str | bytes | os.PathLike[str]


def read_geometry(path_or_text: Source, *, crs: Crs | str) -> Polygonal:
    """The union of all polygonal geometry in a GeoJSON document, valid and in WGS-84."""
    doc = _load(path_or_text)
    crs = _crs(crs)
    if doc.get("type") == "FeatureCollection":
        found = (_feature_geometry(f, i, crs) for i, f in _features(doc))
        parts = [g for g in found if g is not None]
        if not parts:
            raise ValueError("GeoJSON FeatureCollection has no polygonal feature")
        merged = polygonal_part(shapely.make_valid(shapely.union_all(parts)))
        if merged is None:
            raise ValueError("GeoJSON FeatureCollection has no polygonal area")
        return merged
    if doc.get("type") == "Feature":
        geom = _feature_geometry(doc, None, crs)
        if geom is None:
            raise ValueError("GeoJSON Feature has no polygonal geometry")
        return geom
    return _required(doc, crs, "GeoJSON geometry")


@dataclass(frozen=True)
class ScannedFeature:
    """One feature of a file: its properties and WGS-84 geometry, or why it has none."""

    index: int
    properties: dict[str, Any]
    geometry: Polygonal | None
    problem: str = ""  # "feature 3: geometry is null"; empty when the geometry is usable


def read_features(
    path_or_text: Source, *, crs: Crs | str
) -> list[tuple[dict[str, Any], Polygonal]]:
    """Each feature's properties and WGS-84 geometry, in file order; every one must have area."""
    out: list[tuple[dict[str, Any], Polygonal]] = []
    for feature in scan_features(path_or_text, crs=crs):
        if feature.geometry is None:
            raise ValueError(feature.problem)
        out.append((feature.properties, feature.geometry))
    return out


def scan_features(
    path_or_text: Source, *, crs: Crs | str, strict: bool = False
) -> list[ScannedFeature]:
    """Every feature in file order, a bad one carrying its problem instead of a geometry.

    ValueError only when the document as a whole is not GeoJSON. `strict`: a self-intersecting
    or otherwise invalid geometry is a problem (named with its reason) instead of being repaired.
    """
    doc = _load(path_or_text)
    crs = _crs(crs)
    if doc.get("type") == "FeatureCollection":
        items = list(_features(doc))
    elif doc.get("type") == "Feature":
        items = [(0, doc)]
    else:
        items = [(0, {"type": "Feature", "properties": {}, "geometry": doc})]
    out: list[ScannedFeature] = []
    for i, feature in items:
        props = feature.get("properties")
        if props is None:
            props = {}
        if not isinstance(props, dict):
            out.append(ScannedFeature(i, {}, None, f"feature {i}: properties must be an object"))
            continue
        raw = feature.get("geometry")
        if raw is None:
            out.append(ScannedFeature(i, props, None, f"feature {i}: geometry is null"))
            continue
        try:
            geom = _required(raw, crs, f"feature {i}", strict=strict)
        except ValueError as exc:
            out.append(ScannedFeature(i, props, None, str(exc)))
            continue
        out.append(ScannedFeature(i, props, geom))
    return out


def _crs(crs: Crs | str) -> Crs:
    return crs if isinstance(crs, Crs) else parse_crs(crs)


def _load(source: Source) -> dict[str, Any]:
    """Parse GeoJSON from text, bytes or a file path; ValueError when it is neither."""
    if isinstance(source, os.PathLike):
        text = Path(source).read_text(encoding="utf-8")
    elif isinstance(source, bytes):
        text = source.decode("utf-8-sig")
    else:
        text = source
        stripped = source.lstrip("\ufeff \t\r\n")
        if not stripped.startswith(("{", "[")):
            path = Path(source)
            if len(source) < 4096 and path.is_file():
                text = path.read_text(encoding="utf-8")
            else:
                raise ValueError("input is neither GeoJSON text nor the path of an existing file")
    try:
        doc = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid GeoJSON (not JSON): {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise ValueError("invalid GeoJSON: expected an object with a 'type' member")
    return doc


def _features(doc: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    features = doc.get("features")
    if not isinstance(features, list):
        raise ValueError("invalid GeoJSON FeatureCollection: 'features' must be a list")
    out: list[tuple[int, dict[str, Any]]] = []
    for i, f in enumerate(features):
        if not isinstance(f, dict) or f.get("type") != "Feature":
            raise ValueError(f"feature {i}: not a GeoJSON Feature object")
        out.append((i, f))
    return out


def _feature_geometry(feature: dict[str, Any], index: int | None, crs: Crs) -> Polygonal | None:
    """A feature's polygonal geometry, or None for null / point / line features."""
    where = "GeoJSON Feature" if index is None else f"feature {index}"
    raw = feature.get("geometry")
    if raw is None:
        return None
    return _geometry(raw, crs, where)[0]


def _required(raw: Any, crs: Crs, where: str, *, strict: bool = False) -> Polygonal:
    """Like _geometry, but a geometry without polygonal area is an error too."""
    geom, why = _geometry(raw, crs, where, strict=strict)
    if geom is None:
        raise ValueError(f"{where} {why}")
    return geom


def _geometry(
    raw: Any, crs: Crs, where: str, *, strict: bool = False
) -> tuple[Polygonal | None, str]:
    """Build, range-check, convert to WGS-84 and repair one GeoJSON geometry object.

    Malformed input raises ValueError (so does invalid input when `strict`); a well-formed
    geometry without area gives (None, why).
    """
    if not isinstance(raw, dict) or raw.get("type") not in _GEOMETRY_TYPES:
        kind = raw.get("type") if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"{where}: not a GeoJSON geometry (type {kind!r})")
    try:
        geom = shape(raw)
    except Exception as exc:  # shapely raises several types on malformed coordinates
        raise ValueError(f"{where}: malformed {raw['type']} coordinates ({exc})") from None
    coords = shapely.get_coordinates(geom)
    if len(coords) == 0:
        return None, "is empty"
    if not np.all(np.isfinite(coords)):
        raise ValueError(f"{where}: coordinates must be finite numbers")
    lng, lat = coords[:, 0], coords[:, 1]
    if np.any(np.abs(lng) > 180.0) or np.any(np.abs(lat) > 90.0):
        raise ValueError(
            f"{where}: coordinates are not longitude/latitude degrees "
            "(projected data must be reprojected to WGS-84 first)"
        )
    if strict and not shapely.is_valid(geom):
        raise ValueError(f"{where}: invalid geometry ({shapely.is_valid_reason(geom)})")
    if crs is Crs.GCJ02:
        geom = shapely.transform(geom, _gcj02_to_wgs84_xy)
    part = polygonal_part(geom if shapely.is_valid(geom) else shapely.make_valid(geom))
    if part is None:
        return None, f"has no polygonal area ({raw['type']})"
    return part, ""


def _gcj02_to_wgs84_xy(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    lng, lat = gcj02_to_wgs84_array(xy[:, 0], xy[:, 1])
    return np.column_stack([lng, lat])
