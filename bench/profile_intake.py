"""Where a POST /v1/reports spends its time: cProfile of the real app and the bare baseline.

Companion of bench/intake.py when its target is missed. Everything runs in this process and in
one thread (FastAPI's threadpool hop is replaced by a direct call, so cProfile sees the
endpoint, the dependencies and the serialisation), requests go one at a time through
httpx's ASGI transport, on the same kind of freshly seeded database (SQLite, or --postgres).

    .venv/bin/python bench/profile_intake.py [--requests N] [--postgres]

Prints one JSON object (per-request time of each side, the heaviest functions); the raw
profiles go to bench/results/ (git-ignored) for `python -m pstats` or snakeviz.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import numpy as np
from bare_app import create_bare_app
from benchlib import REPO_DIR, emit, environment, log, seeded_database
from intake import SECRET, SEED, Workload, reporters

from app.main import create_app
from core.settings import Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROJECT_DIRS = ("/app/", "/grid/", "/events/", "/dispatch/", "/taxonomy/")


async def _inline_run_sync(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
    """Stand-in for anyio.to_thread.run_sync: run the sync endpoint right here (one thread)."""
    return func(*args)


async def _send(app: Any, path: str, bodies: list[tuple[dict[str, Any], str]]) -> list[int]:
    transport = httpx.ASGITransport(app=app)
    statuses = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for body, token in bodies:
            resp = await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
            statuses.append(resp.status_code)
    return statuses


def _top(stats: pstats.Stats, key: str, n: int, only_project: bool) -> list[dict[str, Any]]:
    stats.sort_stats(key)
    rows = []
    for func in stats.fcn_list:  # type: ignore[attr-defined]
        filename, line, name = func
        if only_project and not any(d in filename for d in PROJECT_DIRS):
            continue
        if "/bench/" in filename:
            continue
        cc, nc, tt, ct, _callers = stats.stats[func]  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({name})",
                "calls": nc,
                "tottime_ms": round(tt * 1000, 1),
                "cumtime_ms": round(ct * 1000, 1),
            }
        )
        if len(rows) >= n:
            break
    return rows


def _short(filename: str) -> str:
    for marker in ("/site-packages/", f"{REPO_DIR}/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def profile_side(
    name: str, app: Any, path: str, bodies: list[tuple[dict[str, Any], str]], top: int
) -> dict[str, Any]:
    asyncio.run(_send(app, path, bodies[:50]))  # warm-up: caches, first-use imports
    timed = bodies[50:]
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    statuses = asyncio.run(_send(app, path, timed))
    profiler.disable()
    seconds = time.perf_counter() - started
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"profile_intake_{name}.pstats"
    profiler.dump_stats(out)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    return {
        "requests": len(timed),
        "non_201": sum(1 for s in statuses if s != 201),
        "ms_per_request_under_profiler": round(1000 * seconds / len(timed), 3),
        "pstats_file": str(out),
        "top_cumulative_project": _top(stats, "cumulative", top, only_project=True),
        "top_self": _top(stats, "tottime", top, only_project=False),
    }


def unprofiled_ms(app: Any, path: str, bodies: list[tuple[dict[str, Any], str]]) -> float:
    started = time.perf_counter()
    asyncio.run(_send(app, path, bodies))
    return round(1000 * (time.perf_counter() - started) / len(bodies), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    anyio.to_thread.run_sync = _inline_run_sync  # type: ignore[assignment]
    rng = np.random.Generator(np.random.PCG64(SEED))

    with seeded_database("profile_intake", args.postgres) as url:
        people = reporters(url, 64, rng)
        work = Workload(people, rng)
        settings = Settings(database_url=url, secret_key=SECRET)
        real = create_app(settings=settings)
        os.environ["GRIDGOV_DATABASE_URL"] = url
        bare = create_bare_app()
        n = args.requests + 50
        sides = {
            "intake": (real, "/v1/reports", work.real_body),
            "bare": (bare, "/bare/reports", work.bare_body),
        }
        result: dict[str, Any] = {}
        for name, (app, path, make) in sides.items():
            bodies = []
            for _ in range(2 * n):
                person, body, text = work.next()
                bodies.append((make(person, body, text), person.token))
            log(f"{name}: {n} requests unprofiled, then {n} under cProfile")
            plain = unprofiled_ms(app, path, bodies[:n])
            result[name] = {
                "ms_per_request": plain,
                **profile_side(name, app, path, bodies[n:], args.top),
            }

    emit(
        {
            "bench": "profile_intake",
            "database": "postgis" if args.postgres else "sqlite",
            "environment": environment(),
            "note": "one thread, sequential requests, ASGI transport (no sockets, no uvicorn)",
            **result,
            "ms_ratio_intake_over_bare": round(
                result["intake"]["ms_per_request"] / result["bare"]["ms_per_request"], 2
            ),
        }
    )


if __name__ == "__main__":
    main()
