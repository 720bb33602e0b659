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
    """Immutable: a new index is built when the grids change, then swapped in.

    Lookups go through a uniform raster over the grids' extent: each cell lists the grids whose
    bounding box touches it (CSR arrays), so a point costs two multiplications, a slice and one
    vectorised point-in-polygon test on a handful of prepared polygons. The STRtree serves the
    nearest-grid fallback only.
    """

    def __init__(self, grids: Sequence[GridShape], *, revision: int = 0) -> None:
        ordered = sorted(grids, key=lambda g: g.code)  # index order == code order: min() is lowest
        self.revision = revision
        self.codes: list[str] = [g.code for g in ordered]
        self.geometries: npt.NDArray[np.object_] = np.array(
            [g.geometry for g in ordered], dtype=object
        )
        shapely.prepare(self.geometries)
        self.tree = shapely.STRtree(self.geometries)
        self._inside = [Placement(c, PlacementRule.INSIDE, 0.0) for c in self.codes]
        self._border = [Placement(c, PlacementRule.BORDER, 0.0) for c in self.codes]
        self._build_raster()

    def _build_raster(self) -> None:
        n = len(self.codes)
        if n == 0:
            self._nx = self._ny = 0
            return
        bounds = shapely.bounds(self.geometries)
        self._x0 = float(bounds[:, 0].min())
        self._y0 = float(bounds[:, 1].min())
        width = max(float(bounds[:, 2].max()) - self._x0, 1e-9)
        height = max(float(bounds[:, 3].max()) - self._y0, 1e-9)
        # Cells about half a typical grid across, at most ~4 M cells in all.
        typical = float(
            np.median(np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]))
        )
        cell = max(typical / 2.0, math.sqrt(width * height / 4_000_000), 1e-9)
        self._nx = max(1, math.ceil(width / cell))
        self._ny = max(1, math.ceil(height / cell))
        self._sx = self._nx / width
        self._sy = self._ny / height
        ix0 = self._col(bounds[:, 0])
        ix1 = self._col(bounds[:, 2])
        iy0 = self._row(bounds[:, 1])
        iy1 = self._row(bounds[:, 3])
        cells: list[npt.NDArray[np.int64]] = []
        owners: list[npt.NDArray[np.int64]] = []
        for i in range(n):
            cols = np.arange(ix0[i], ix1[i] + 1, dtype=np.int64)
            rows = np.arange(iy0[i], iy1[i] + 1, dtype=np.int64)
            ids = (rows[:, None] * self._nx + cols[None, :]).ravel()
            cells.append(ids)
            owners.append(np.full(len(ids), i, dtype=np.int64))
        cell_ids = np.concatenate(cells)
        owner_ids = np.concatenate(owners)
        order = np.lexsort((owner_ids, cell_ids))
        self._cand = owner_ids[order]
        counts = np.bincount(cell_ids, minlength=self._nx * self._ny)
        self._indptr = np.zeros(self._nx * self._ny + 1, dtype=np.int64)
        np.cumsum(counts, out=self._indptr[1:])
        self._indptr_list: list[int] = self._indptr.tolist()

    def _col(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        return np.clip(((x - self._x0) * self._sx).astype(np.int64), 0, self._nx - 1)

    def _row(self, y: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        return np.clip(((y - self._y0) * self._sy).astype(np.int64), 0, self._ny - 1)

    def __len__(self) -> int:
        return len(self.codes)

    def _cell(self, lng: float, lat: float) -> int | None:
        fx = (lng - self._x0) * self._sx
        fy = (lat - self._y0) * self._sy
        if not (0.0 <= fx <= self._nx and 0.0 <= fy <= self._ny):
            return None
        return min(int(fy), self._ny - 1) * self._nx + min(int(fx), self._nx - 1)

    def locate(self, lng: float, lat: float, *, tolerance_m: float) -> Placement | None:
        """Place one WGS-84 point, or None when it is farther than tolerance from every grid."""
        if not self.codes:
            return None
        cell = self._cell(lng, lat)
        if cell is not None:
            lo = self._indptr_list[cell]
            hi = self._indptr_list[cell + 1]
            if hi > lo:
                candidates = self._cand[lo:hi]
                hits = candidates[shapely.intersects_xy(self.geometries[candidates], lng, lat)]
                if len(hits) == 1:
                    return self._inside[int(hits[0])]
                if len(hits) > 1:
                    return self._border[int(hits.min())]
        return self._nearest(lng, lat, tolerance_m)

    def locate_many(
        self, lngs: npt.ArrayLike, lats: npt.ArrayLike, *, tolerance_m: float
    ) -> list[Placement | None]:
        """Place many points at once: vectorised candidate tests, nearest fallback per miss."""
        xs = np.asarray(lngs, dtype=np.float64)
        ys = np.asarray(lats, dtype=np.float64)
        n = len(xs)
        if not self.codes or n == 0:
            return [None] * n
        hit_count = np.zeros(n, dtype=np.int64)
        best = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        chunk = 8192
        for start in range(0, n, chunk):
            cx = xs[start : start + chunk]
            cy = ys[start : start + chunk]
            fx = (cx - self._x0) * self._sx
            fy = (cy - self._y0) * self._sy
            ok = (fx >= 0) & (fx <= self._nx) & (fy >= 0) & (fy <= self._ny)
            pts = np.nonzero(ok)[0]
            cells = np.minimum(fy[pts].astype(np.int64), self._ny - 1) * self._nx + np.minimum(
                fx[pts].astype(np.int64), self._nx - 1
            )
            lo = self._indptr[cells]
            counts = self._indptr[cells + 1] - lo
            pt_idx = np.repeat(pts, counts)
            offsets = np.arange(len(pt_idx)) - np.repeat(np.cumsum(counts) - counts, counts)
            geom_idx = self._cand[np.repeat(lo, counts) + offsets]
            inside = shapely.intersects_xy(self.geometries[geom_idx], cx[pt_idx], cy[pt_idx])
            pt_idx = pt_idx[inside] + start
            geom_idx = geom_idx[inside]
            np.add.at(hit_count, pt_idx, 1)
            np.minimum.at(best, pt_idx, geom_idx)
        out: list[Placement | None] = []
        for i, (count, b) in enumerate(zip(hit_count.tolist(), best.tolist(), strict=True)):
            if count == 1:
                out.append(self._inside[b])
            elif count > 1:
                out.append(self._border[b])
            else:
                out.append(self._nearest(float(xs[i]), float(ys[i]), tolerance_m))
        return out

    def _nearest(self, lng: float, lat: float, tolerance_m: float) -> Placement | None:
        if tolerance_m <= 0 or not self.codes or not (math.isfinite(lng) and math.isfinite(lat)):
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
