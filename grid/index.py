"""In-process spatial index of the active micro-grids (shapely STRtree over prepared polygons).

Placement rule, deterministic for every point:
- `inside`: the point lies in exactly one grid;
- `border`: the point lies on a shared border (in several grids): the lowest grid code wins;
- `nearest`: the point is in no grid but within the tolerance of one: the nearest grid wins
  (ties: the lowest code);
- beyond the tolerance the point is outside the district and nothing is placed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from grid.coords import haversine_m

_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LNG_EQUATOR = 111_320.0


class PlacementRule(StrEnum):
    INSIDE = "inside"
    BORDER = "border"
    NEAREST = "nearest"


@dataclass(frozen=True)
class Placement:
    grid_code: str
    rule: PlacementRule
    distance_m: float


@dataclass(frozen=True)
class GridShape:
    code: str
    geometry: BaseGeometry


class GridIndex:
    """Immutable: a new index is built when the grids change, then swapped in."""

    def __init__(self, grids: Sequence[GridShape], *, revision: int = 0) -> None:
        ordered = sorted(grids, key=lambda g: g.code)  # index order == code order: min() is lowest
        self.revision = revision
        self.codes: list[str] = [g.code for g in ordered]
        self.geometries: npt.NDArray[np.object_] = np.array(
            [g.geometry for g in ordered], dtype=object
        )
        shapely.prepare(self.geometries)
        self.tree = shapely.STRtree(self.geometries)

    def __len__(self) -> int:
        return len(self.codes)

    def locate(self, lng: float, lat: float, *, tolerance_m: float) -> Placement | None:
        """Place one WGS-84 point, or None when it is farther than tolerance from every grid."""
        if not self.codes:
            return None
        point = Point(lng, lat)
        candidates = self.tree.query(point)
        if len(candidates):
            hits = candidates[shapely.intersects_xy(self.geometries[candidates], lng, lat)]
            if len(hits) == 1:
                return Placement(self.codes[int(hits[0])], PlacementRule.INSIDE, 0.0)
            if len(hits) > 1:
                return Placement(self.codes[int(hits.min())], PlacementRule.BORDER, 0.0)
        return self._nearest(lng, lat, tolerance_m)

    def locate_many(
        self, lngs: npt.ArrayLike, lats: npt.ArrayLike, *, tolerance_m: float
    ) -> list[Placement | None]:
        """Place many points at once: one vectorised tree query, nearest fallback per miss."""
        xs = np.asarray(lngs, dtype=np.float64)
        ys = np.asarray(lats, dtype=np.float64)
        n = len(xs)
        hit_count = np.zeros(n, dtype=np.int64)
        best = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        if self.codes and n:
            pt_idx, geom_idx = self.tree.query(shapely.points(xs, ys))
            inside = shapely.intersects_xy(self.geometries[geom_idx], xs[pt_idx], ys[pt_idx])
            pt_idx = pt_idx[inside]
            geom_idx = geom_idx[inside]
            np.add.at(hit_count, pt_idx, 1)
            np.minimum.at(best, pt_idx, geom_idx)
        out: list[Placement | None] = []
        for i in range(n):
            if hit_count[i] == 1:
                out.append(Placement(self.codes[int(best[i])], PlacementRule.INSIDE, 0.0))
            elif hit_count[i] > 1:
                out.append(Placement(self.codes[int(best[i])], PlacementRule.BORDER, 0.0))
            else:
                out.append(self._nearest(float(xs[i]), float(ys[i]), tolerance_m))
        return out

    def _nearest(self, lng: float, lat: float, tolerance_m: float) -> Placement | None:
        if tolerance_m <= 0 or not self.codes:
            return None
        # A degree of longitude is the shorter one: searching that far in degrees is a superset.
        deg = tolerance_m / (_M_PER_DEG_LNG_EQUATOR * max(math.cos(math.radians(lat)), 1e-6))
        point = Point(lng, lat)
        candidates = self.tree.query(point.buffer(deg))
        best: tuple[float, int] | None = None
        for idx in sorted(int(i) for i in candidates):
            geom = self.geometries[idx]
            near = shapely.shortest_line(point, geom)
            (x0, y0), (x1, y1) = near.coords
            dist = haversine_m(x0, y0, x1, y1)
            if dist <= tolerance_m and (best is None or dist < best[0]):
                best = (dist, idx)
        if best is None:
            return None
        return Placement(self.codes[best[1]], PlacementRule.NEAREST, best[0])
