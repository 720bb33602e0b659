"""The console's grid map in Debian's Chromium with 921 and 16,417 grids: what a dispatcher
waits for when the map opens at the grid level, and when they zoom and pan.

Two districts on PostGIS, side by side in one run: the demo (禅城, 921 grids) and the same
outline, towns and villages cut into 16,417 grids (Shenzhen's count; each village tessellated
into its share by area, as the demo does). Each gets a few thousand open cases spread over its
grids, so the map has colours to draw. The app runs under uvicorn; Chromium (headless,
`/usr/bin/chromium`) signs in as the dispatcher and opens 网格地图 at the grid level.

Per district, over `--rounds` fresh page loads (the outline cache of the process warm after the
first, as in a command centre where many consoles share a process): the time from choosing the
grid level to the map reporting it has drawn them (`data-drawn`), the bytes of outlines the
page received (decoded, and as sent: gzipped), the JS heap after drawing, and the time a zoom
in and a pan take to the next painted frame. Prints one JSON.

    .venv/bin/python bench/console_map.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import emit, environment, insert_cases, log, scratch_postgres  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from app.demo import DEMO_PASSWORD, seed  # noqa: E402
from app.main import create_app  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from core.db import make_engine, session_scope  # noqa: E402
from core.settings import Settings  # noqa: E402
from grid import service as grid_service  # noqa: E402
from grid.demo_district import build_chancheng  # noqa: E402
from grid.tessellate import allocate, tessellate  # noqa: E402
from tests.live import running  # noqa: E402

SECRET = "gridgov-bench-console-map-5b1f0e7d2c4a9863-not-for-production"
CHROMIUM = "/usr/bin/chromium"
SHENZHEN_GRIDS = 16_417
OPEN_CASES = 5_000


def big_grids(total: int) -> list[grid_service.AreaIn]:
    """The demo's villages cut into `total` grids, shared by area (codes village + 3 digits)."""
    district = build_chancheng()
    villages = district.villages
    counts = allocate(total, [v.geometry.area for v in villages])
    out = []
    for village, count in zip(villages, counts, strict=True):
        for k, cell in enumerate(tessellate(village.geometry, count, seed=int(village.code)), 1):
            code, name = f"{village.code}{k:03d}", f"{village.name}第{k}网格"
            out.append(grid_service.AreaIn(code=code, name=name, geometry=cell))
    return out


def add_cases(url: str) -> None:
    """OPEN_CASES open cases scattered over the grids (a point inside each), a fifth overdue."""
    spread = "1 + (n * 7919) % cardinality(g.codes)"
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            insert_cases(
                conn,
                first=1,
                last=OPEN_CASES,
                t0="now() - interval '2 hours'",
                grid_code=f"g.codes[{spread}]",
                lat=f"g.lats[{spread}]",
                lng=f"g.lngs[{spread}]",
                location=f"ST_SetSRID(ST_MakePoint(g.lngs[{spread}], g.lats[{spread}]), 4326)",
                warning_level="CASE WHEN n % 5 = 0 THEN 'red' ELSE 'none' END",
            )
    finally:
        engine.dispose()


@contextmanager
def district(grids: int) -> Iterator[str]:
    """A served district of `grids` grids; yields the console's base URL."""
    with scratch_postgres(f"map{grids}") as url:
        engine = make_engine(url)
        upgrade(engine)
        with session_scope(engine) as session:
            seed(session, now=datetime.now(UTC))
        if grids != len(build_chancheng().grids):
            started = time.perf_counter()
            cells = big_grids(grids)
            log(f"tessellated {len(cells)} grids in {time.perf_counter() - started:.1f} s")
            with session_scope(engine) as session:
                grid_service.upsert_areas(session, cells, now=datetime.now(UTC))
        add_cases(url)
        settings = Settings(database_url=url, secret_key=SECRET)
        with running(create_app(settings=settings, engine=engine)) as base:
            yield base
        engine.dispose()


FRAME = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"


def painted_after(page: Page, act: Any) -> float:
    """Seconds from `act` to the second animation frame after it (the redraw painted)."""
    started = time.perf_counter()
    act()
    page.evaluate(FRAME)
    return time.perf_counter() - started


def one_load(page: Page, base: str, expected: int) -> dict[str, Any]:
    received: list[int] = []
    transferred: list[int] = []

    def on_response(response: Any) -> None:
        if "/v1/grids" in response.url and "level=grid" in response.url:
            received.append(len(response.body()))
            transferred.append(response.request.sizes()["responseBodySize"])

    page.on("response", on_response)
    page.goto(f"{base}/console/#/map")
    box = page.get_by_test_id("grid-map")
    page.wait_for_function("() => document.querySelector('[data-testid=grid-map]')?.dataset.drawn")
    started = time.perf_counter()
    page.locator("select[name=level]").select_option("grid")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=grid-map]').dataset.drawnLevel === 'grid'"
        " && Number(document.querySelector('[data-testid=grid-map]').dataset.drawn) > 0",
        timeout=120_000,
    )
    page.evaluate(FRAME)
    shown = time.perf_counter() - started
    drawn = int(box.get_attribute("data-drawn") or 0)
    heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : null")
    bounds = box.bounding_box()
    assert bounds is not None
    cx, cy = bounds["x"] + bounds["width"] / 2, bounds["y"] + bounds["height"] / 2
    zoom = painted_after(page, lambda: page.mouse.dblclick(cx, cy))
    page.wait_for_timeout(300)  # outlines a zoom asks for

    def pan() -> None:
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx - 200, cy - 100, steps=5)
        page.mouse.up()

    panned = painted_after(page, pan)
    page.remove_listener("response", on_response)
    return {
        "grid_level_shown_s": shown,
        "features_drawn": drawn,
        "expected_grids": expected,
        "outline_bytes": sum(received),
        "outline_bytes_transferred": sum(transferred),
        "js_heap_mb": round(heap / 2**20, 1) if heap else None,
        "zoom_in_painted_s": zoom,
        "pan_painted_s": panned,
    }


def summary(loads: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"loads": len(loads)}
    for key in ("grid_level_shown_s", "zoom_in_painted_s", "pan_painted_s"):
        values = [load[key] for load in loads]
        out[key] = {
            "first": round(values[0], 3),
            "median_warm": round(statistics.median(values[1:] or values), 3),
            "max": round(max(values), 3),
        }
    for key in ("features_drawn", "outline_bytes", "outline_bytes_transferred", "js_heap_mb"):
        out[key] = loads[-1][key]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result: dict[str, Any] = {"bench": "console_map", "environment": environment()}
    sizes = (len(build_chancheng().grids), SHENZHEN_GRIDS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--enable-precise-memory-info"]
        )
        for grids in sizes:
            with district(grids) as base:
                loads = []
                for _ in range(args.rounds):
                    context = browser.new_context(viewport={"width": 1920, "height": 1080})
                    page = context.new_page()
                    page.goto(f"{base}/console/")
                    form = page.get_by_test_id("login-form")
                    form.locator("input[name=username]").fill("dispatcher")
                    form.locator("input[name=password]").fill(DEMO_PASSWORD)
                    form.locator("button[type=submit]").click()
                    page.get_by_test_id("who").wait_for()
                    loads.append(one_load(page, base, grids))
                    log(f"{grids} grids: {loads[-1]}")
                    context.close()
                result[f"grids_{grids}"] = summary(loads)
        browser.close()
    emit(result)


if __name__ == "__main__":
    main()
