"""Deterministic tessellation of a region into compact, roughly equal-area cells.

Used to make demo hierarchies and benchmark data out of real outlines: sample points uniformly
inside the region, move n seeds with a few Lloyd (k-means) steps so each owns about the same
area, cut the region with the seeds' Voronoi diagram, then repair slivers so exactly n cells
come back in reading order. Pure functions, no randomness beyond ``numpy.random.Generator(seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon

Polygonal: TypeAlias = Polygon | MultiPolygon
FloatArray = npt.NDArray[np.float64]


_SAMPLES_PER_CELL = 32
_MIN_SAMPLES = 2000
_LLOYD_STEPS = 8
_BRUTE_FORCE_CENTRES = 64
_SLIVER_FRACTION = 0.02
"""A cell smaller than this share of the mean cell area is merged into a neighbour."""


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` by largest remainder, each share at least 1."""
    k = len(weights)
    if k == 0:
        raise ValueError("allocate() needs at least one weight")
    if total < k:
        raise ValueError(f"cannot give each of {k} parts at least 1 out of {total}")
    w = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    if float(w.sum()) <= 0.0:
        w = np.ones(k)
    quota = total * w / float(w.sum())
    shares = np.maximum(np.floor(quota).astype(np.int64), 1)
    # Stable sorts with the index as tie-breaker keep the result deterministic.
    while int(shares.sum()) < total:
        order = np.argsort(-(quota - shares), kind="stable")
        shares[order[: total - int(shares.sum())]] += 1
    while int(shares.sum()) > total:
        slack = np.where(shares > 1, quota - shares, np.inf)
        order = np.argsort(slack, kind="stable")
        shares[order[0]] -= 1
    return [int(s) for s in shares]


def tessellate(
    region: Polygonal, n: int, *, seed: int, grid_size: float | None = None
) -> list[Polygonal]:
    """Cut ``region`` into exactly n non-empty cells, no gaps, no overlaps, in reading order."""
    if not isinstance(region, Polygon | MultiPolygon):
        raise ValueError(f"region must be a Polygon or MultiPolygon, not {type(region).__name__}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    gs = grid_size_for(region) if grid_size is None else grid_size
    region = polygonal_part(shapely.set_precision(shapely.make_valid(region), gs))
    if region is None or region.area <= 0.0:
        raise ValueError("region has no area")
    x_scale = _x_scale(region)
    if n == 1:
        return [region]
    shapely.prepare(region)
    rng = np.random.Generator(np.random.PCG64(seed))
    cells = _kmeans_cells(region, n, rng, x_scale, gs)
    cells = _merge_slivers(cells, region.area / n, gs)
    while len(cells) < n:
        cells = _split_largest(cells, rng, x_scale, gs)
    return _reading_order(cells, region, x_scale)


def voronoi_cells(
    region: Polygonal,
    seeds: FloatArray,
    *,
    x_scale: float = 1.0,
    grid_size: float | None = None,
) -> list[Polygonal]:
    """One cell per seed (same order): its Voronoi cell, with x stretched by ``x_scale``, ∩ region.

    A cell may be empty when the seed's Voronoi cell misses the region; callers decide.
    """
    seeds = np.asarray(seeds, dtype=np.float64).reshape(-1, 2)
    if len(seeds) == 0:
        return []
    if len(seeds) == 1:
        whole = polygonal_part(region)
        return [whole if whole is not None else Polygon()]
    scaled = seeds * np.array([x_scale, 1.0])
    x0, y0, x1, y1 = region.bounds
    margin = max(x1 - x0, y1 - y0) + 1e-6
    frame = shapely.box(x0 * x_scale - margin, y0 - margin, x1 * x_scale + margin, y1 + margin)
    diagram = shapely.voronoi_polygons(shapely.multipoints(scaled), extend_to=frame, ordered=True)
    raw = np.asarray(shapely.get_parts(diagram))
    if len(raw) != len(seeds):
        raise ValueError("seeds must be distinct points")
    unscale = np.array([1.0 / x_scale, 1.0])
    raw = shapely.transform(raw, lambda xy: xy * unscale)
    inside = shapely.contains_properly(region, raw)
    out = np.empty(len(raw), dtype=object)
    gs = grid_size_for(region) if grid_size is None else grid_size
    out[inside] = shapely.set_precision(raw[inside], gs)
    out[~inside] = shapely.intersection(raw[~inside], region, grid_size=gs)
    result: list[Polygonal] = []
    for geom in out:
        part = polygonal_part(geom)
        result.append(part if part is not None else Polygon())
    return result


def grid_size_for(geom: shapely.Geometry) -> float:
    """Overlay precision grid: a power of ten ~1e-14 of the largest coordinate (1e-12 for lon/lat).

    Snap-rounding every overlay to one grid keeps neighbours' shared edges identical; the grid
    is fine enough that a child pokes out of its parent by < 1e-10 of its area, yet far
    coarser than double rounding at that magnitude, so the snapping stays robust.
    """
    x0, y0, x1, y1 = geom.bounds
    largest = max(abs(x0), abs(y0), abs(x1), abs(y1), 1.0)
    return float(10.0 ** math.floor(math.log10(largest * 1e-14)))


def geographic_x_scale(region: Polygonal) -> float:
    """cos(latitude) for lon/lat degrees, so distances are isotropic on the ground; 1 otherwise."""
    return _x_scale(region)


def _x_scale(region: Polygonal) -> float:
    x0, y0, x1, y1 = region.bounds
    if -180.0 <= x0 <= x1 <= 180.0 and -90.0 <= y0 <= y1 <= 90.0:
        return max(math.cos(math.radians((y0 + y1) / 2.0)), 0.05)
    return 1.0


def polygonal_part(geom: shapely.Geometry | None) -> Polygonal | None:
    """The parts of ``geom`` with area (points, lines, empty pieces dropped); None if none."""
    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, Polygon):
        return geom if geom.area > 0 else None
    flat: list[Polygon] = []
    stack = [geom]
    while stack:
        g = stack.pop()
        if isinstance(g, Polygon):
            if g.area > 0:
                flat.append(g)
        elif isinstance(g, MultiPolygon | shapely.GeometryCollection):
            stack.extend(reversed(list(g.geoms)))
    if not flat:
        return None
    if len(flat) == 1:
        return flat[0]
    return MultiPolygon(flat)


def _sample(region: Polygonal, count: int, rng: np.random.Generator) -> FloatArray:
    """``count`` points uniformly distributed inside ``region`` (rejection sampling on its bbox)."""
    x0, y0, x1, y1 = region.bounds
    fill = max(region.area / max((x1 - x0) * (y1 - y0), 1e-300), 1e-3)
    chunks: list[FloatArray] = []
    have = 0
    while have < count:
        m = int((count - have) / fill * 1.1) + 64
        u = rng.random((m, 2))
        xs = x0 + u[:, 0] * (x1 - x0)
        ys = y0 + u[:, 1] * (y1 - y0)
        keep = shapely.contains_xy(region, xs, ys)
        chunk = np.column_stack([xs[keep], ys[keep]])
        chunks.append(chunk)
        have += len(chunk)
    return np.concatenate(chunks)[:count]


def _assign(centres: FloatArray, points: shapely.Geometry) -> npt.NDArray[np.int64]:
    """Index of the nearest centre for each point, via the point-in-Voronoi-cell test.

    Few centres: brute force. Many: locating points in the Voronoi cells is several times
    faster than a nearest-neighbour search; STRtree.query_nearest covers points the diagram
    misses (coincident centres). On an exact tie the lowest index wins.
    """
    if len(centres) <= _BRUTE_FORCE_CENTRES:
        xy = shapely.get_coordinates(points)
        d2 = (xy[:, 0, None] - centres[None, :, 0]) ** 2 + (
            xy[:, 1, None] - centres[None, :, 1]
        ) ** 2
        nearest: npt.NDArray[np.int64] = np.argmin(d2, axis=1).astype(np.int64)
        return nearest
    x0, y0 = centres.min(axis=0)
    x1, y1 = centres.max(axis=0)
    px0, py0, px1, py1 = shapely.total_bounds(points)
    frame = shapely.box(
        min(x0, px0) - 1.0, min(y0, py0) - 1.0, max(x1, px1) + 1.0, max(y1, py1) + 1.0
    )
    diagram = shapely.voronoi_polygons(shapely.multipoints(centres), extend_to=frame, ordered=True)
    cells = shapely.get_parts(diagram)
    out = np.full(len(points), -1, dtype=np.int64)
    if len(cells) == len(centres):
        hits = shapely.STRtree(cells).query(points, predicate="intersects")
        first = np.unique(hits[0], return_index=True)[1]
        out[hits[0][first]] = hits[1][first]
    missing = np.flatnonzero(out < 0)
    if len(missing):
        tree = shapely.STRtree(shapely.points(centres))
        idx = tree.query_nearest(points[missing], all_matches=False)
        out[missing[idx[0]]] = idx[1]
    return out


def _morton(pts: FloatArray) -> npt.NDArray[np.uint64]:
    """Z-order (Morton) key of each point on a 65536 x 65536 grid over the points' extent."""
    lo = pts.min(axis=0)
    span = max(float((pts.max(axis=0) - lo).max()), 1e-300)
    q = np.minimum(((pts - lo) / span * 65535.0).astype(np.uint64), np.uint64(65535))
    code = np.zeros(len(pts), dtype=np.uint64)
    for bit in range(16):
        b = np.uint64(bit)
        code |= ((q[:, 0] >> b) & np.uint64(1)) << (np.uint64(2) * b)
        code |= ((q[:, 1] >> b) & np.uint64(1)) << (np.uint64(2) * b + np.uint64(1))
    return code


def _spread(pts: FloatArray, n: int) -> FloatArray:
    """n evenly spread starting centres: the middle sample of each n-th of the Z-order curve.

    Lloyd steps from such a start converge far faster than from random samples.
    """
    order = np.argsort(_morton(pts), kind="stable")
    pick = ((np.arange(n) + 0.5) * len(pts) / n).astype(np.int64)
    return pts[order[pick]].copy()


def _kmeans_seeds(
    region: Polygonal, n: int, rng: np.random.Generator, x_scale: float
) -> FloatArray:
    """Seeds from a few Lloyd steps on uniform samples; seeds left owning nothing are dropped."""
    samples = _sample(region, max(_MIN_SAMPLES, _SAMPLES_PER_CELL * n), rng)
    pts = samples * np.array([x_scale, 1.0])
    geoms = shapely.points(pts)
    centres = _spread(pts, n)
    for _ in range(_LLOYD_STEPS):
        owner = _assign(centres, geoms)
        count = np.bincount(owner, minlength=n).astype(np.float64)
        sx = np.bincount(owner, weights=pts[:, 0], minlength=n)
        sy = np.bincount(owner, weights=pts[:, 1], minlength=n)
        has = count > 0
        centres[has, 0] = sx[has] / count[has]
        centres[has, 1] = sy[has] / count[has]
    owner = _assign(centres, geoms)
    used = np.bincount(owner, minlength=n) > 0
    seeds: FloatArray = np.unique(centres[used], axis=0) * np.array([1.0 / x_scale, 1.0])
    return seeds


def _kmeans_cells(
    region: Polygonal, n: int, rng: np.random.Generator, x_scale: float, gs: float
) -> list[Polygonal]:
    seeds = _kmeans_seeds(region, n, rng, x_scale)
    cells = voronoi_cells(region, seeds, x_scale=x_scale, grid_size=gs)
    return [c for c in cells if not c.is_empty]


def _merge_slivers(cells: list[Polygonal], mean_area: float, gs: float) -> list[Polygonal]:
    """Merge each cell below the sliver threshold into the neighbour it shares most border with."""
    cells = [c for c in cells if not c.is_empty]
    threshold = _SLIVER_FRACTION * mean_area
    while len(cells) > 1:
        areas = shapely.area(np.asarray(cells, dtype=object))
        small = np.flatnonzero(areas < threshold)
        if len(small) == 0:
            break
        i = int(small[np.argmin(areas[small])])
        arr = np.asarray(cells, dtype=object)
        near = shapely.intersects(arr, shapely.envelope(cells[i]))
        near[i] = False
        others = np.flatnonzero(near)
        shared = shapely.length(
            shapely.intersection(cells[i].boundary, shapely.boundary(arr[others]))
        )
        if len(others) and float(np.max(shared)) > 0.0:
            j = int(others[np.argmax(shared)])
        else:
            rest = np.array([k for k in range(len(cells)) if k != i], dtype=np.int64)
            j = int(rest[np.argmin(shapely.distance(cells[i], arr[rest]))])
        merged = polygonal_part(shapely.union(cells[j], cells[i], grid_size=gs))
        cells[j] = merged if merged is not None else cells[j]
        del cells[i]
    return cells


def _split_largest(
    cells: list[Polygonal], rng: np.random.Generator, x_scale: float, gs: float
) -> list[Polygonal]:
    """Replace the largest cell (first on ties) by two k-means halves of it."""
    areas = shapely.area(np.asarray(cells, dtype=object))
    i = int(np.argmax(areas))
    target = cells[i]
    shapely.prepare(target)
    halves = _kmeans_cells(target, 2, rng, x_scale, gs)
    if len(halves) < 2:
        raise ValueError("could not split a cell in two; region too degenerate for this n")
    return cells[:i] + halves + cells[i + 1 :]


def _reading_order(cells: list[Polygonal], region: Polygonal, x_scale: float) -> list[Polygonal]:
    """Sort north→south in bands about one cell tall, then west→east within a band."""
    arr = np.asarray(cells, dtype=object)
    reps = shapely.get_coordinates(shapely.point_on_surface(arr))
    band = math.sqrt(region.area * x_scale / len(cells))
    top = region.bounds[3]
    rows = np.floor((top - reps[:, 1]) / band)
    order = np.lexsort((-reps[:, 1], reps[:, 0], rows))
    return [cells[int(k)] for k in order]
