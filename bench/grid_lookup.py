"""Grid placement: the in-process resolver (grid/index.py) against the same lookups in PostGIS.

Two grid sets: the 921 demo grids of 禅城 and 16,417 cells tessellated from Shenzhen's outline.
Each set goes into its own fresh PostGIS database (migrated by app.migrate, GiST index
ix_area_geom, ANALYZEd, dropped at the end). Random points, uniform in the set's bounding box and
kept to those inside the region, are placed
- one at a time: GridIndex.locate vs one prepared query per point over a reused psycopg
  connection on 127.0.0.1 (the way a caller without the index would do it);
- in bulk: GridIndex.locate_many vs ONE query joining unnest(lng[], lat[]) with ST_Intersects.
Both sides must give the same grid code for every point strictly inside one grid.

    .venv/bin/python bench/grid_lookup.py [--quick]

Prints one JSON object on stdout; progress on stderr. See bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely
from benchlib import (
    SHARED_DIR,
    emit,
    environment,
    log,
    percentiles_us,
    ratio,
    scratch_postgres,
)
from shapely.geometry.base import BaseGeometry
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

import grid.tessellate
from app.migrate import upgrade
from core.db import make_engine
from core.settings import Settings
from grid.demo_district import build_chancheng
from grid.geojson import read_geometry
from grid.index import GridIndex, GridShape, PlacementRule
from grid.models import Area, AreaLevel
from grid.tessellate import tessellate

BENCH_DIR = Path(__file__).resolve().parent
CACHE_DIR = BENCH_DIR / ".cache"
SHENZHEN_GEOJSON = SHARED_DIR / "data" / "boundaries" / "440300.geojson"
SHENZHEN_GRIDS = 16_417
TESSELLATION_SEED = 440300
POINT_SEED = 20261123
TARGET_SPEEDUP = 10.0

SINGLE_SQL = (
    "SELECT code FROM area WHERE level = 'grid' AND active"
    " AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))"
    " ORDER BY code LIMIT 1"
)
BULK_SQL = (
    "SELECT DISTINCT ON (p.i) p.i, a.code"
    " FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS p(lng, lat, i)"
    " JOIN area a ON a.level = 'grid' AND a.active"
    " AND ST_Intersects(a.geom, ST_SetSRID(ST_MakePoint(p.lng, p.lat), 4326))"
    " ORDER BY p.i, a.code"
)
# The same single-point query as a named prepared statement, to EXPLAIN its generic plan.
PREPARE_SQL = "PREPARE bench_locate(float8, float8) AS " + SINGLE_SQL.replace("%s, %s", "$1, $2")


@dataclass(frozen=True)
class Budget:
    single_points: int
    bulk_points: int
    bulk_repeats: int
    chunks: int  # single-point work alternates in-process / PostGIS in this many chunks
    loop_seconds: float  # a single-point loop stops after this long, whatever the count
    warmup: int


FULL = Budget(
    single_points=2_000,
    bulk_points=20_000,
    bulk_repeats=7,
    chunks=10,
    loop_seconds=60.0,
    warmup=200,
)
QUICK = Budget(
    single_points=300, bulk_points=3_000, bulk_repeats=2, chunks=2, loop_seconds=15.0, warmup=50
)


@dataclass(frozen=True)
class GridSet:
    name: str
    region: BaseGeometry  # points are drawn inside it
    grids: list[GridShape]


# --- grid sets ------------------------------------------------------------------------------


def chancheng_set() -> GridSet:
    district = build_chancheng()
    return GridSet(
        name="chancheng_921",
        region=district.district.geometry,
        grids=[GridShape(g.code, g.geometry) for g in district.grids],
    )


def shenzhen_set() -> GridSet:
    region = read_geometry(SHENZHEN_GEOJSON, crs="gcj02")
    cells = cached_tessellation(region, SHENZHEN_GRIDS, TESSELLATION_SEED)
    grids = [GridShape(f"440300{i:09d}", cell) for i, cell in enumerate(cells, start=1)]
    return GridSet(name=f"shenzhen_{SHENZHEN_GRIDS}", region=region, grids=grids)


def cached_tessellation(region: BaseGeometry, n: int, seed: int) -> list[BaseGeometry]:
    """tessellate() is slow at this size: keep its WKB, keyed by input, n, seed and the code."""
    key = hashlib.sha256()
    key.update(SHENZHEN_GEOJSON.read_bytes())
    key.update(Path(grid.tessellate.__file__).read_bytes())
    key.update(f"{n}:{seed}".encode())
    path = CACHE_DIR / f"tessellation_440300_{n}_{seed}_{key.hexdigest()[:16]}.wkb"
    if path.exists():
        cells = _read_wkb_records(path.read_bytes())
        if len(cells) == n:
            log(f"tessellation from cache {path.name}")
            return cells
    log(f"tessellating Shenzhen into {n} cells (cached afterwards)...")
    started = time.perf_counter()
    cells = list(tessellate(region, n, seed=seed))
    log(f"tessellated in {time.perf_counter() - started:.1f} s")
    CACHE_DIR.mkdir(exist_ok=True)
    ignore = CACHE_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n!.gitignore\n", encoding="utf-8")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(_wkb_records(cells))
    tmp.replace(path)
    return cells


def _wkb_records(geoms: list[BaseGeometry]) -> bytes:
    """Length-prefixed WKB records (little-endian uint32 length, then the WKB)."""
    out = bytearray()
    for wkb in shapely.to_wkb(np.array(geoms, dtype=object)):
        out += struct.pack("<I", len(wkb)) + wkb
    return bytes(out)


def _read_wkb_records(data: bytes) -> list[BaseGeometry]:
    blobs: list[bytes] = []
    pos = 0
    while pos < len(data):
        (size,) = struct.unpack_from("<I", data, pos)
        blobs.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return list(shapely.from_wkb(blobs))


# --- points ---------------------------------------------------------------------------------


def random_points(region: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniform in the region's bounding box, keeping only those inside the region."""
    x0, y0, x1, y1 = region.bounds
    shapely.prepare(region)
    kept: list[np.ndarray] = []
    have = 0
    while have < n:
        xs = rng.uniform(x0, x1, 4 * n)
        ys = rng.uniform(y0, y1, 4 * n)
        inside = shapely.contains_xy(region, xs, ys)
        batch = np.column_stack([xs[inside], ys[inside]])
        kept.append(batch)
        have += len(batch)
    return np.concatenate(kept)[:n]


# --- PostGIS --------------------------------------------------------------------------------


def load_postgis(url: str, grids: list[GridShape]) -> None:
    """Schema by the app's migrations, then the grids as level='grid' areas, then ANALYZE."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        now = datetime.now(UTC)
        rows = [
            {
                "code": g.code,
                "name": f"网格{g.code[-3:]}",
                "level": AreaLevel.GRID.value,
                "parent_code": None,
                "active": True,
                "geom": g.geometry,
                "created_at": now,
                "updated_at": now,
            }
            for g in grids
        ]
        with engine.begin() as conn:
            conn.execute(insert(Area.__table__), rows)  # type: ignore[attr-defined]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE area"))
    finally:
        engine.dispose()


def psycopg_dsn(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"


def _plan_values(plan: Any, key: str) -> Iterator[str]:
    """Every `key` ("Index Name", "Node Type", ...) anywhere in an EXPLAIN (FORMAT JSON) plan."""
    if isinstance(plan, dict):
        if key in plan:
            yield str(plan[key])
        for value in plan.values():
            yield from _plan_values(value, key)
    elif isinstance(plan, list):
        for item in plan:
            yield from _plan_values(item, key)


def _plan_summary(plan: Any) -> dict[str, Any]:
    indexes = sorted(set(_plan_values(plan, "Index Name")))
    return {
        "uses_ix_area_geom": "ix_area_geom" in indexes,
        "indexes": indexes,
        "nodes": list(dict.fromkeys(_plan_values(plan, "Node Type"))),
    }


def explain(
    conn: psycopg.Connection[Any], pt: tuple[float, float], bulk: np.ndarray
) -> dict[str, Any]:
    """The plans the timed queries get: custom and generic (prepared) single, and the bulk join."""
    with conn.cursor() as cur:
        cur.execute("EXPLAIN (FORMAT JSON) " + SINGLE_SQL, pt)
        single_custom = cur.fetchone()[0]  # type: ignore[index]
        cur.execute(PREPARE_SQL)
        cur.execute("SET plan_cache_mode = force_generic_plan")
        cur.execute(f"EXPLAIN (FORMAT JSON) EXECUTE bench_locate({pt[0]!r}, {pt[1]!r})")
        single_generic = cur.fetchone()[0]  # type: ignore[index]
        cur.execute("RESET plan_cache_mode")
        cur.execute("DEALLOCATE bench_locate")
        cur.execute("EXPLAIN (FORMAT JSON) " + BULK_SQL, (bulk[:, 0].tolist(), bulk[:, 1].tolist()))
        bulk_plan = cur.fetchone()[0]  # type: ignore[index]
    conn.commit()
    return {
        "single_custom_plan": _plan_summary(single_custom),
        "single_generic_plan": _plan_summary(single_generic),
        "bulk_plan": _plan_summary(bulk_plan),
    }


# --- the comparison -------------------------------------------------------------------------


class FullCollections:
    """Counts the garbage collector's full (generation 2) passes, and their time, while active."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> dict[str, Any]:
        return {"gc_full_collections": self.count, "gc_full_s": round(self.seconds, 4)}


def time_each(
    locate: Callable[[float, float], str | None], xs: list[float], ys: list[float], budget_s: float
) -> tuple[list[str | None], list[int], float]:
    """Each point's lookup timed on its own, until the points or the budget run out."""
    codes: list[str | None] = []
    lat_ns: list[int] = []
    clock = time.perf_counter_ns
    started = clock()
    deadline = started + int(budget_s * 1e9)
    for x, y in zip(xs, ys, strict=True):
        t0 = clock()
        code = locate(x, y)
        t1 = clock()
        lat_ns.append(t1 - t0)
        codes.append(code)
        if t1 > deadline:
            break
    return codes, lat_ns, (clock() - started) / 1e9


def time_in_process(
    index: GridIndex, xs: list[float], ys: list[float], tol: float, budget_s: float
) -> tuple[list[str | None], list[int], float]:
    def locate(x: float, y: float) -> str | None:
        placement = index.locate(x, y, tolerance_m=tol)
        return placement.grid_code if placement is not None else None

    return time_each(locate, xs, ys, budget_s)


def time_postgis(
    conn: psycopg.Connection[Any], xs: list[float], ys: list[float], budget_s: float
) -> tuple[list[str | None], list[int], float]:
    with conn.cursor() as cur:

        def locate(x: float, y: float) -> str | None:
            cur.execute(SINGLE_SQL, (x, y), prepare=True)
            row = cur.fetchone()
            return row[0] if row else None

        return time_each(locate, xs, ys, budget_s)


def bulk_postgis(conn: psycopg.Connection[Any], pts: np.ndarray) -> tuple[list[str | None], float]:
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(BULK_SQL, (pts[:, 0].tolist(), pts[:, 1].tolist()))
        rows = cur.fetchall()
    elapsed = time.perf_counter() - started
    codes: list[str | None] = [None] * len(pts)
    for i, code in rows:
        codes[int(i) - 1] = code
    return codes, elapsed


def bench_set(gs: GridSet, budget: Budget, tol: float, seed: int) -> dict[str, Any]:
    log(f"[{gs.name}] building GridIndex of {len(gs.grids)} grids")
    started = time.perf_counter()
    index = GridIndex(gs.grids)
    build_s = time.perf_counter() - started

    rng = np.random.Generator(np.random.PCG64(seed))
    single_pts = random_points(gs.region, budget.single_points, rng)
    bulk_pts = random_points(gs.region, budget.bulk_points, rng)
    warm_pts = random_points(gs.region, budget.warmup, rng)

    with scratch_postgres(gs.name.split("_")[0]) as url:
        log(f"[{gs.name}] loading {len(gs.grids)} grids into PostGIS")
        started = time.perf_counter()
        load_postgis(url, gs.grids)
        load_s = time.perf_counter() - started
        with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
            postgis_version = conn.execute("SELECT postgis_lib_version()").fetchone()[0]  # type: ignore[index]
            plans = explain(conn, (float(single_pts[0, 0]), float(single_pts[0, 1])), bulk_pts)
            log(
                f"[{gs.name}] plans: "
                + ", ".join(f"{k}={v['uses_ix_area_geom']}" for k, v in plans.items())
            )

            # warm-up: caches, prepared statement, the planner's generic-plan choice
            wx, wy = warm_pts[:, 0].tolist(), warm_pts[:, 1].tolist()
            time_in_process(index, wx, wy, tol, budget.loop_seconds)
            time_postgis(conn, wx, wy, budget.loop_seconds)
            index.locate_many(bulk_pts[:500, 0], bulk_pts[:500, 1], tolerance_m=tol)
            bulk_postgis(conn, bulk_pts[:500])

            # single points, alternating in chunks so drift hits both sides alike
            ip_codes: list[str | None] = []
            pg_codes: list[str | None] = []
            ip_ns: list[int] = []
            pg_ns: list[int] = []
            ip_wall = pg_wall = 0.0
            ip_gc = FullCollections()
            for chunk in np.array_split(np.arange(len(single_pts)), budget.chunks):
                xs, ys = single_pts[chunk, 0].tolist(), single_pts[chunk, 1].tolist()
                with ip_gc:
                    codes, lat, wall = time_in_process(index, xs, ys, tol, budget.loop_seconds)
                ip_codes += codes
                ip_ns += lat
                ip_wall += wall
                codes, lat, wall = time_postgis(conn, xs, ys, budget.loop_seconds)
                pg_codes += codes
                pg_ns += lat
                pg_wall += wall
                log(
                    f"[{gs.name}] single chunk: {len(ip_codes)} in-process, {len(pg_codes)} PostGIS"
                )

            # bulk, alternating repeats
            bulk_ip_s: list[float] = []
            bulk_pg_s: list[float] = []
            placements: list[Any] = []
            bulk_pg_codes: list[str | None] = []
            bulk_gc = FullCollections()
            for rep in range(budget.bulk_repeats):
                placements = []  # let the previous answer go, as a caller would
                with bulk_gc:
                    started = time.perf_counter()
                    placements = index.locate_many(bulk_pts[:, 0], bulk_pts[:, 1], tolerance_m=tol)
                    bulk_ip_s.append(time.perf_counter() - started)
                bulk_pg_codes, elapsed = bulk_postgis(conn, bulk_pts)
                bulk_pg_s.append(elapsed)
                log(
                    f"[{gs.name}] bulk {rep + 1}/{budget.bulk_repeats}: in-process "
                    f"{bulk_ip_s[-1]:.3f} s, PostGIS {elapsed:.3f} s for {len(bulk_pts)} points"
                )

    # Verification: every point strictly inside exactly one grid must agree.
    single_rules = [
        index.locate(x, y, tolerance_m=tol) for x, y in single_pts[: len(ip_codes)].tolist()
    ]
    verify = _verify(
        [(p, pg) for p, pg in zip(single_rules, pg_codes, strict=False)]
        + [(p, pg) for p, pg in zip(placements, bulk_pg_codes, strict=True)]
    )

    n_ip, n_pg = len(ip_ns), len(pg_ns)
    single_ip = {
        "lookups": n_ip,
        **percentiles_us(ip_ns, 50, 95),
        "lookups_per_s": round(n_ip / ip_wall, 1),
        **ip_gc.summary(),
    }
    single_pg = {
        "lookups": n_pg,
        **percentiles_us(pg_ns, 50, 95),
        "lookups_per_s": round(n_pg / pg_wall, 1),
    }
    ip_med = float(np.median(bulk_ip_s))
    pg_med = float(np.median(bulk_pg_s))
    bulk_ip = {
        "points": len(bulk_pts),
        "median_s": round(ip_med, 4),
        "min_s": round(min(bulk_ip_s), 4),
        "points_per_s": round(len(bulk_pts) / ip_med, 1),
        **bulk_gc.summary(),
    }
    bulk_pg = {
        "points": len(bulk_pts),
        "median_s": round(pg_med, 4),
        "min_s": round(min(bulk_pg_s), 4),
        "points_per_s": round(len(bulk_pts) / pg_med, 1),
    }
    # Targets are checked on the unrounded ratios; the JSON shows them to two decimals.
    raw_single = single_ip["lookups_per_s"] / single_pg["lookups_per_s"]
    raw_bulk = bulk_ip["points_per_s"] / bulk_pg["points_per_s"]
    speedup_single = ratio(single_ip["lookups_per_s"], single_pg["lookups_per_s"])
    speedup_bulk = ratio(bulk_ip["points_per_s"], bulk_pg["points_per_s"])
    return {
        "grids": len(gs.grids),
        "index_build_s": round(build_s, 3),
        "postgis_load_s": round(load_s, 2),
        "postgis_version": postgis_version,
        "explain": plans,
        "single": {
            "in_process": single_ip,
            "postgis": single_pg,
            "speedup": speedup_single,
            "speedup_p50": ratio(single_pg["p50_us"], single_ip["p50_us"]),
        },
        "bulk": {
            "in_process": bulk_ip,
            "postgis": bulk_pg,
            "speedup": speedup_bulk,
            "speedup_best_of_repeats": ratio(min(bulk_pg_s), min(bulk_ip_s)),
            "repeats": budget.bulk_repeats,
        },
        "verification": verify,
        "targets_met": bool(
            raw_single >= TARGET_SPEEDUP
            and raw_bulk >= TARGET_SPEEDUP
            and verify["mismatches"] == 0
            and all(p["uses_ix_area_geom"] for p in plans.values())
        ),
    }


def _verify(pairs: list[tuple[Any, str | None]]) -> dict[str, int]:
    counts = {
        "compared": 0,
        "mismatches": 0,
        "border": 0,
        "nearest": 0,
        "unplaced": 0,
        "postgis_no_hit": 0,
    }
    for placement, pg_code in pairs:
        if pg_code is None:
            counts["postgis_no_hit"] += 1
        if placement is None:
            counts["unplaced"] += 1
            continue
        if placement.rule is PlacementRule.BORDER:
            counts["border"] += 1
        elif placement.rule is PlacementRule.NEAREST:
            counts["nearest"] += 1
        else:
            counts["compared"] += 1
            if placement.grid_code != pg_code:
                counts["mismatches"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points, for a smoke run")
    args = parser.parse_args()
    budget = QUICK if args.quick else FULL
    tol = Settings().grid_tolerance_m
    started = time.perf_counter()

    sets: dict[str, Any] = {}
    for make in (chancheng_set, shenzhen_set):
        gs = make()
        sets[gs.name] = bench_set(gs, budget, tol, POINT_SEED)

    emit(
        {
            "bench": "grid_lookup",
            "quick": args.quick,
            "environment": environment(),
            "config": {
                "single_points": budget.single_points,
                "bulk_points": budget.bulk_points,
                "bulk_repeats": budget.bulk_repeats,
                "tolerance_m": tol,
                "point_seed": POINT_SEED,
                "tessellation_seed": TESSELLATION_SEED,
                "target_speedup": TARGET_SPEEDUP,
            },
            "sets": sets,
            "targets_met": all(s["targets_met"] for s in sets.values()),
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
