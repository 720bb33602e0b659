"""How long a grid import takes to validate and store: 禅城 demo (921 grids) and Shenzhen size.

Sets:
- `chancheng_921`: the demo hierarchy (1 + 4 + 139 + 921 areas).
- `shenzhen_16417`: the Shenzhen outline cut into 16,417 cells (the tessellation cached by
  `grid_lookup.py`), grouped in Morton order into villages of 20 cells and towns of 11
  villages, each parent the union of its children (so the hierarchy is a clean partition).

For each set, on a fresh SQLite file and (with `--postgres`) a scratch PostGIS database:
`check_s` (the hierarchy checks alone, nothing stored yet), `first_import_s` (the whole
`import_geojson`: parse, validate, insert) and `reimport_s` (the same file again: validated
against the stored areas, every row updated). `--quick`: the demo set only.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from benchlib import emit, environment, log, scratch_postgres
from grid_lookup import SHENZHEN_GEOJSON, cached_tessellation
from shapely.geometry import mapping

from app.migrate import upgrade
from core.db import make_engine, session_scope
from grid import service as grid_service
from grid.consistency import check_hierarchy
from grid.demo_district import build_chancheng
from grid.geojson import read_geometry

NOW = datetime(2026, 11, 24, tzinfo=UTC)
TOLERANCE_M2 = 1.0


def chancheng() -> dict[str, Any]:
    return {a.code: a.geometry for a in build_chancheng().areas()}


def shenzhen() -> dict[str, Any]:
    region = read_geometry(SHENZHEN_GEOJSON, crs="gcj02")
    cells = np.array(cached_tessellation(region, 16_417, 440300), dtype=object)
    pts = shapely.get_coordinates(shapely.point_on_surface(cells))
    x0, y0 = pts.min(axis=0)
    span = float((pts.max(axis=0) - pts.min(axis=0)).max())
    q = ((pts - [x0, y0]) / span * 65535).astype(np.uint64)
    key = np.zeros(len(q), dtype=np.uint64)
    for bit in range(16):  # Morton order: nearby cells get nearby keys
        key |= ((q[:, 0] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit)
        key |= ((q[:, 1] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit + 1)
    cells = cells[np.argsort(key, kind="stable")]
    areas: dict[str, Any] = {}
    villages: list[tuple[str, Any]] = []
    for v, start in enumerate(range(0, len(cells), 20)):
        town = f"440300{v // 11 + 1:03d}"
        village = f"{town}{v % 11 + 1:03d}"
        group = cells[start : start + 20]
        for k, cell in enumerate(group, start=1):
            areas[f"{village}{k:03d}"] = cell
        villages.append((village, shapely.union_all(group)))
    for code, geom in villages:
        areas[code] = geom
    for town in sorted({c[:9] for c, _ in villages}):
        areas[town] = shapely.union_all([g for c, g in villages if c[:9] == town])
    areas["440300"] = shapely.union_all([areas[c] for c in areas if len(c) == 9])
    return areas


def as_geojson(areas: dict[str, Any]) -> bytes:
    features = [
        {"type": "Feature", "properties": {"code": c, "name": c}, "geometry": mapping(g)}
        for c, g in sorted(areas.items(), key=lambda kv: (len(kv[0]), kv[0]))
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def run_on(url: str, source: bytes) -> dict[str, float]:
    engine = make_engine(url)
    try:
        upgrade(engine)
        out = {}
        for label in ("first_import_s", "reimport_s"):
            started = time.perf_counter()
            with session_scope(engine) as session:
                grid_service.import_geojson(
                    session, source, crs="wgs84", now=NOW, tolerance_m2=TOLERANCE_M2
                )
            out[label] = round(time.perf_counter() - started, 2)
            log(label, out[label])
        return out
    finally:
        engine.dispose()


def bench_set(name: str, areas: dict[str, Any], postgres: bool, tmp: str) -> dict[str, Any]:
    grids = sum(1 for c in areas if len(c) == 15)
    log(f"{name}: {len(areas)} areas, {grids} grids")
    started = time.perf_counter()
    problems = check_hierarchy(areas, {}, tolerance_m2=TOLERANCE_M2)
    result: dict[str, Any] = {
        "areas": len(areas),
        "grids": grids,
        "check_s": round(time.perf_counter() - started, 2),
        "problems": len(problems),
    }
    source = as_geojson(areas)
    result["file_mb"] = round(len(source) / 1e6, 1)
    result["sqlite"] = run_on(f"sqlite:///{tmp}/{name}.db", source)
    if postgres:
        with scratch_postgres("grid_import") as url:
            result["postgis"] = run_on(url, source)
    return result


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    sets = {"chancheng_921": chancheng}
    if not args.quick:
        sets["shenzhen_16417"] = shenzhen
    out: dict[str, Any] = {"environment": environment(), "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in sets.items():
            out["sets"][name] = bench_set(name, build(), args.postgres, tmp)
    emit(out)


if __name__ == "__main__":
    main()
