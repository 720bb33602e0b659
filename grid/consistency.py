"""Whether a set of incoming areas, laid over the areas already stored, leaves a sound hierarchy.

Pure functions on shapely geometry (WGS-84). Imports are upserts, so the hierarchy after an
import is the stored areas with the incoming ones replacing those of the same code; only
problems that involve at least one incoming area are reported (an import is not refused for
what was already stored, but it may not make things worse around what it touches).

Areas are compared in square metres (a local equal-area scale at each geometry's latitude,
good to well under 1 % at the sizes involved): a shared border has area 0 and is never a
problem; an overlap, a gap or a part outside the parent counts above `tolerance_m2`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Set
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

# WGS-84 authalic radius: 1 degree of latitude ≈ 111.2 km on the equal-area sphere.
_EARTH_RADIUS_M = 6_371_007.2
_M_PER_DEG = _EARTH_RADIUS_M * math.pi / 180.0

LEVEL_NAMES = {6: "district", 9: "town", 12: "village", 15: "grid"}

FloatArray = npt.NDArray[np.float64]
GeomArray = npt.NDArray[Any]


def parent_code(code: str) -> str | None:
    """The code of the area one level up (codes nest by prefix); None for a district."""
    return code[:-3] if len(code) > 6 else None


def area_m2(geoms: GeomArray) -> FloatArray:
    """Areas in square metres of lon/lat geometries (0 for empty ones)."""
    if len(geoms) == 0:
        return np.zeros(0)
    bounds = shapely.bounds(geoms)
    lat = np.nan_to_num((bounds[:, 1] + bounds[:, 3]) / 2.0)
    scale = _M_PER_DEG * _M_PER_DEG * np.cos(np.radians(lat))
    return np.asarray(np.nan_to_num(shapely.area(geoms)) * scale, dtype=np.float64)


def _near(geom: BaseGeometry) -> str:
    """Where to look: a point on the largest polygonal piece, as 'lat, lng'."""
    parts = [p for p in shapely.get_parts(geom) if p.area > 0] or [geom]
    point = shapely.point_on_surface(max(parts, key=lambda p: p.area))
    if point.is_empty:
        return "?"
    return f"{point.y:.6f}, {point.x:.6f}"


def check_hierarchy(
    incoming: Mapping[str, BaseGeometry],
    stored: Mapping[str, BaseGeometry],
    *,
    tolerance_m2: float,
    also_in_file: Set[str] = frozenset(),
) -> list[str]:
    """Every problem the incoming areas would leave: orphans, areas outside their parent,
    overlaps between areas of one level, gaps inside a village. Codes are well-formed already.

    `also_in_file`: codes present in the file whose geometry was unusable (already reported);
    they count as present so that their children are not called orphans too.
    """
    merged = {**stored, **incoming}
    problems: list[str] = []
    problems += _orphans(incoming, merged.keys() | also_in_file)
    outside, within = _outside_parent(incoming, merged, tolerance_m2)
    problems += outside
    overlaps, overlapping = _overlaps(incoming, merged, tolerance_m2)
    problems += overlaps
    problems += _village_gaps(incoming, merged, tolerance_m2, overlapping, within)
    return problems


def _orphans(incoming: Mapping[str, BaseGeometry], present: Set[str]) -> list[str]:
    out = []
    for code in sorted(incoming):
        parent = parent_code(code)
        if parent is not None and parent not in present:
            out.append(
                f"{code}: its {LEVEL_NAMES[len(parent)]} {parent} is neither in the file "
                "nor in the database (orphan)"
            )
    return out


def _outside_parent(
    incoming: Mapping[str, BaseGeometry], merged: Mapping[str, BaseGeometry], tolerance: float
) -> tuple[list[str], dict[str, bool]]:
    """Incoming areas outside their parent, and stored children outside an incoming parent;
    and for each child looked at, whether its parent covers it entirely.
    """
    pairs = [
        (code, parent)
        for code in sorted(merged)
        if (parent := parent_code(code)) is not None
        and parent in merged
        and (code in incoming or parent in incoming)
    ]
    if not pairs:
        return [], {}
    children = np.array([merged[c] for c, _ in pairs], dtype=object)
    parents = np.array([merged[p] for _, p in pairs], dtype=object)
    shapely.prepare(parents)
    covers = shapely.covers(parents, children)
    within = {child: bool(ok) for (child, _), ok in zip(pairs, covers, strict=True)}
    suspects = np.flatnonzero(~covers)
    if len(suspects) == 0:
        return [], within
    outside = shapely.difference(children[suspects], parents[suspects])
    sizes = area_m2(outside)
    out = []
    for k in np.flatnonzero(sizes > tolerance):
        child, parent = pairs[suspects[k]]
        out.append(
            f"{child}: {sizes[k]:.1f} m² lies outside its {LEVEL_NAMES[len(parent)]} {parent} "
            f"(near {_near(outside[k])})"
        )
    return out, within


def _overlaps(
    incoming: Mapping[str, BaseGeometry], merged: Mapping[str, BaseGeometry], tolerance: float
) -> tuple[list[str], set[str]]:
    """Pairs of areas of one level whose interiors overlap, at least one of them incoming;
    and the codes of every area whose interior meets another's (even within the tolerance).
    """
    out = []
    overlapping: set[str] = set()
    for length in sorted(LEVEL_NAMES):
        codes = sorted(c for c in merged if len(c) == length)
        mine = [i for i, c in enumerate(codes) if c in incoming]
        if len(codes) < 2 or not mine:
            continue
        geoms = np.array([merged[c] for c in codes], dtype=object)
        tree = shapely.STRtree(geoms)
        query_idx, tree_idx = tree.query(geoms[mine], predicate="intersects")
        a = np.asarray(mine)[query_idx]
        b = tree_idx
        # Each unordered pair once: both incoming → keep a < b; one incoming → it is `a`.
        b_incoming = np.isin(b, mine)
        keep = (a != b) & (~b_incoming | (a < b))
        a, b = a[keep], b[keep]
        # Neighbours mostly share a border only: the interiors test is cheaper than overlay.
        inner = shapely.relate_pattern(geoms[a], geoms[b], "2********")
        a, b = a[inner], b[inner]
        if len(a) == 0:
            continue
        overlapping.update(codes[i] for i in a)
        overlapping.update(codes[i] for i in b)
        shared = shapely.intersection(geoms[a], geoms[b])
        sizes = area_m2(shared)
        for k in np.flatnonzero(sizes > tolerance):
            first, second = sorted((codes[a[k]], codes[b[k]]))
            out.append(
                f"{first} and {second} overlap by {sizes[k]:.1f} m² (near {_near(shared[k])})"
            )
    return sorted(out), overlapping


def _village_gaps(
    incoming: Mapping[str, BaseGeometry],
    merged: Mapping[str, BaseGeometry],
    tolerance: float,
    overlapping: Set[str],
    within: Mapping[str, bool],
) -> list[str]:
    """Villages touched by the import whose grids leave part of the village uncovered."""
    grids_of: dict[str, list[str]] = defaultdict(list)
    for code in merged:
        if len(code) == 15:
            grids_of[code[:12]].append(code)
    touched = {c for c in incoming if len(c) == 12} | {c[:12] for c in incoming if len(c) == 15}
    villages = sorted(v for v in touched if v in merged and grids_of.get(v))
    if not villages:
        return []
    # Screen: without overlaps, the covered area is the sum of each grid's part inside the
    # village (the grid itself when the village covers it); only villages that look gappy, or
    # whose grids overlap, get the exact (slower) union.
    pairs = [(v, g) for v in villages for g in grids_of[v]]
    village_geoms = np.array([merged[v] for v, _ in pairs], dtype=object)
    grid_geoms = np.array([merged[g] for _, g in pairs], dtype=object)
    inside = np.array([within.get(g, False) for _, g in pairs], dtype=bool)
    unknown = np.array([g not in within for _, g in pairs], dtype=bool)
    if unknown.any():
        shapely.prepare(village_geoms[unknown])
        inside[unknown] = shapely.covers(village_geoms[unknown], grid_geoms[unknown])
    parts = grid_geoms.copy()
    parts[~inside] = shapely.intersection(village_geoms[~inside], grid_geoms[~inside])
    covered: dict[str, float] = defaultdict(float)
    for (v, _), size in zip(pairs, area_m2(parts), strict=True):
        covered[v] += float(size)
    own = area_m2(np.array([merged[v] for v in villages], dtype=object))
    out = []
    for village, village_m2 in zip(villages, own, strict=True):
        grids = grids_of[village]
        estimate = float(village_m2) - covered[village]
        if estimate <= tolerance / 2 and overlapping.isdisjoint(grids):
            continue
        cover = shapely.union_all(np.array([merged[g] for g in grids], dtype=object))
        gap = shapely.difference(merged[village], cover)
        size = float(area_m2(np.array([gap], dtype=object))[0])
        if size > tolerance:
            out.append(
                f"village {village}: {size:.1f} m² is covered by none of its {len(grids)} grids "
                f"(largest gap near {_near(gap)})"
            )
    return out
