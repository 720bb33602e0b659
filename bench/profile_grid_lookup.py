"""Where GridIndex.locate / locate_many spend their time, step by step (companion of grid_lookup).

Times each step the resolver takes (point construction, STRtree query, the prepared
intersects test, building the answers) on the same grid sets and random points as
bench/grid_lookup.py, and counts the garbage collector's full passes that locate_many's answers
trigger. Best of several repeats, so this shows cost, not noise.

    .venv/bin/python bench/profile_grid_lookup.py [--quick]

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import time
import timeit
from typing import Any

import numpy as np
import shapely
from benchlib import REPO_DIR, emit, environment, log
from grid_lookup import (
    POINT_SEED,
    FullCollections,
    GridSet,
    chancheng_set,
    random_points,
    shenzhen_set,
)
from shapely.geometry import Point

from grid.index import GridIndex, Placement, PlacementRule

TOLERANCE_M = 50.0


def _best_us(fn: Any, number: int, repeat: int = 5) -> float:
    return round(min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6, 3)


def single_steps(index: GridIndex, pts: np.ndarray) -> dict[str, float]:
    """Per-call µs of locate and of each of its steps, averaged over the points."""
    xs, ys = pts[:, 0].tolist(), pts[:, 1].tolist()
    n = len(xs)
    points = [Point(x, y) for x, y in zip(xs, ys, strict=True)]
    cands = [index.tree.query(p) for p in points]
    geoms = [index.geometries[c] for c in cands]

    def whole() -> None:
        for x, y in zip(xs, ys, strict=True):
            index.locate(x, y, tolerance_m=TOLERANCE_M)

    def make_point() -> None:
        for x, y in zip(xs, ys, strict=True):
            Point(x, y)

    def query() -> None:
        for p in points:
            index.tree.query(p)

    def intersects() -> None:
        for g, c, x, y in zip(geoms, cands, xs, ys, strict=True):
            c[shapely.intersects_xy(g, x, y)]

    def answer() -> None:
        for c in cands:
            Placement(index.codes[int(c[0])] if len(c) else "", PlacementRule.INSIDE, 0.0)

    return {
        "locate_us": round(_best_us(whole, 1) / n, 3),
        "point_construction_us": round(_best_us(make_point, 1) / n, 3),
        "strtree_query_us": round(_best_us(query, 1) / n, 3),
        "intersects_xy_and_mask_us": round(_best_us(intersects, 1) / n, 3),
        "placement_object_us": round(_best_us(answer, 1) / n, 3),
        "mean_candidates": round(float(np.mean([len(c) for c in cands])), 2),
    }


def bulk_steps(index: GridIndex, pts: np.ndarray) -> dict[str, Any]:
    """ms of locate_many and of its vectorised steps; the rest is its per-point Python loop."""
    xs, ys = pts[:, 0], pts[:, 1]
    geoms_pts = shapely.points(xs, ys)
    pt_idx, geom_idx = index.tree.query(geoms_pts)

    def whole() -> None:
        index.locate_many(xs, ys, tolerance_m=TOLERANCE_M)

    out: dict[str, Any] = {"points": len(pts)}
    gc.disable()
    try:
        out["locate_many_gc_off_ms"] = round(_best_us(whole, 1) / 1000, 2)
        out["points_ms"] = round(_best_us(lambda: shapely.points(xs, ys), 1) / 1000, 2)
        out["strtree_query_ms"] = round(_best_us(lambda: index.tree.query(geoms_pts), 1) / 1000, 2)
        out["intersects_xy_ms"] = round(
            _best_us(
                lambda: shapely.intersects_xy(index.geometries[geom_idx], xs[pt_idx], ys[pt_idx]),
                1,
            )
            / 1000,
            2,
        )
    finally:
        gc.enable()
    vectorised = out["points_ms"] + out["strtree_query_ms"] + out["intersects_xy_ms"]
    out["python_loop_and_placements_ms"] = round(out["locate_many_gc_off_ms"] - vectorised, 2)

    # With the collector on, as in a real process: how often a full pass lands in the call.
    runs: list[float] = []
    with FullCollections() as full:
        for _ in range(10):
            started = time.perf_counter()
            whole()
            runs.append(time.perf_counter() - started)
    out["locate_many_gc_on_ms"] = {
        "min": round(1000 * min(runs), 2),
        "median": round(1000 * float(np.median(runs)), 2),
        "max": round(1000 * max(runs), 2),
    }
    out["gc_on_10_calls"] = full.summary()

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        whole()
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO()).sort_stats("tottime")
    top = []
    for func in stats.fcn_list[:6]:  # type: ignore[attr-defined]
        filename, line, name = func
        _cc, nc, tt, ct, _ = stats.stats[func]  # type: ignore[attr-defined]
        short = filename.split("site-packages/")[-1].replace(f"{REPO_DIR}/", "")
        top.append(
            {
                "function": f"{short}:{line}({name})",
                "calls_per_locate_many": nc // 3,
                "self_ms_per_call": round(tt * 1000 / 3, 2),
            }
        )
    out["cprofile_top_self"] = top
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_single, n_bulk = (300, 3_000) if args.quick else (2_000, 20_000)
    result: dict[str, Any] = {}
    for make in (chancheng_set, shenzhen_set):
        gs: GridSet = make()
        log(f"[{gs.name}] profiling")
        index = GridIndex(gs.grids)
        rng = np.random.Generator(np.random.PCG64(POINT_SEED))
        single = random_points(gs.region, n_single, rng)
        bulk = random_points(gs.region, n_bulk, rng)
        result[gs.name] = {
            "single": single_steps(index, single),
            "bulk": bulk_steps(index, bulk),
            "gc_tracked_objects": len(gc.get_objects()),
        }
    emit(
        {
            "bench": "profile_grid_lookup",
            "quick": args.quick,
            "environment": environment(),
            "sets": result,
        }
    )


if __name__ == "__main__":
    main()
