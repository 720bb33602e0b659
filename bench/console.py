"""The console's pages on 1,000,000 cases (PostGIS): every API call a page makes when it loads,
timed through the app (uvicorn's ASGI stack in process, TestClient), p50/p95 per call and the
slowest call per page; goal p95 < 300 ms for every call.

The calls are those of `app/console/*.js` on load (kept in step by
tests/console/test_console_browser.py, which records what each page asks for and compares it
with `PAGES` below). Beside each page: the same number of calls to `GET /healthz`, the floor of
the stack (no database), so that a slow machine shows as a slow floor.

The cases are generated in SQL as in bench/stats.py: 1,000,000 over 2026 and up to the clock
(1 January 2027, 10:00 local), nine in ten closed; of the rest, reported, registered,
dispatched, accepted and resolved, with yellow and red cards, so the queue, the SLA board and
the map have a realistic open load (about 100,000 open cases).

    .venv/bin/python bench/console.py [--quick] [--rounds N]   # --quick: 100,000 cases
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import (  # noqa: E402
    HistoryTemplate,
    emit,
    environment,
    insert_cases,
    insert_history,
    log,
    percentiles_ms,
    scratch_postgres,
)
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402

from app.demo import seed  # noqa: E402
from app.main import create_app  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from core.db import make_engine, session_scope  # noqa: E402
from core.models import User  # noqa: E402
from core.security import issue_token  # noqa: E402
from core.settings import Settings  # noqa: E402
from dispatch.stats_rollup import refresh  # noqa: E402

SECRET = "gridgov-bench-console-7d1e4b2a9c8f6035-not-for-production"
NOW = datetime(2027, 1, 1, 2, 0, tzinfo=UTC)  # 10:00 local

CASE_T0 = "timestamptz '2026-01-01 00:00+08' + n * (interval '365 days' / :cases)"
# n % 10 = 0: still open, in the statuses of the loop; the rest closed.
OPEN = "n % 10 = 0"
CASES = {
    "status": f"CASE WHEN NOT ({OPEN}) THEN 'closed' "
    "ELSE (ARRAY['reported','registered','dispatched','accepted','accepted','resolved'])"
    "[1 + (n / 10) % 6] END",
    # One closed case in seven was closed late: its row keeps the red card.
    "warning_level": f"CASE WHEN NOT ({OPEN}) THEN (CASE WHEN n % 7 = 1 THEN 'red' ELSE 'none' END)"
    " "
    "WHEN n % 30 = 0 THEN 'red' "
    "WHEN n % 70 = 0 THEN 'yellow' ELSE 'none' END",
    "escalation_level": f"CASE WHEN ({OPEN}) AND n % 30 = 0 THEN 1 ELSE 0 END",
    "resolved_at": f"CASE WHEN {OPEN} THEN NULL ELSE t0 + (n % 11) * interval '1 hour' END",
    "closed_at": f"CASE WHEN {OPEN} THEN NULL"
    " ELSE t0 + (n % 11) * interval '1 hour' + interval '1 hour' END",
    "handling_seconds": f"CASE WHEN {OPEN} THEN NULL ELSE (n % 11) * 2400.0 END",
}
HISTORY: list[HistoryTemplate] = [
    (1, "report", "reported", "0", 1, False),
    (2, "register", "registered", "5 minutes", 1, False),
    (4, "dispatch", "dispatched", "10 minutes", 1, False),
    (5, "accept", "accepted", "20 minutes", 1, False),
    (8, "resolve", "resolved", "50 minutes", 1, True),
    (9, "verify", "verified", "55 minutes", 1, True),
    (10, "close", "closed", "60 minutes", 1, True),
    (11, "visit", "closed", "2 hours", 3, True),
]

OPEN_STATUSES = "".join(
    f"&status={s}"
    for s in (
        "reported",
        "registered",
        "dispatched",
        "accepted",
        "suspended",
        "resolved",
        "verified",
    )
)
MONTH = "from=2026-12-01&to=2026-12-31"
# What each page asks for when it opens (the console's own calls; `{case}` a case id).
PAGES: dict[str, list[str]] = {
    "shell": [
        "/v1/auth/session",
        "/v1/workflow/actions",
        "/v1/departments",
        "/v1/taxonomy",
        "/v1/areas?level=town",
        "/v1/areas?level=village",
    ],
    "queue": [
        f"/v1/cases?sort=-reported_at&limit=50&offset=0{OPEN_STATUSES}",
        "/v1/cases?status=reported&status=registered&limit=1",
    ],
    "case": [
        "/v1/cases/{case}",
        "/v1/grids?level=grid&parent={grid}",
    ],
    "map": [
        "/v1/grids?level=town&simplify=20",
        "/v1/grids?level=village&simplify=10",
        "/v1/grids?level=grid&simplify=5",
        "/v1/stats/open?by=town",
        "/v1/stats/open?by=village",
        "/v1/stats/open?by=grid",
    ],
    "warnings": [
        "/v1/warnings?status=open",
        "/v1/warnings?status=acknowledged",
        f"/v1/stats/heat?level=grid&{MONTH}",
        "/v1/grids?level=grid&simplify=5",
    ],
    "sla": [
        "/v1/stats/open?by=department",
        "/v1/stats/open?by=town",
        f"/v1/cases?sla=overdue{OPEN_STATUSES}&sort=due_at&limit=50",
        f"/v1/cases?sla=warning{OPEN_STATUSES}&sort=due_at&limit=50",
    ],
    "stats": [
        f"/v1/stats/departments?{MONTH}",
        f"/v1/stats/areas?level=town&{MONTH}",
    ],
    "department": [
        "/v1/cases?status=dispatched&status=accepted&sort=due_at&limit=50&offset=0",
    ],
}
DEPARTMENT_PAGES = {"department"}


def generate(url: str, cases: int) -> dict[str, Any]:
    plain = create_engine(url)  # no statement timeout: the generation takes minutes
    started = time.perf_counter()
    with plain.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        insert_cases(conn, first=1, last=cases, t0=CASE_T0, params={"cases": cases}, **CASES)
        log(f"{cases} cases in {time.perf_counter() - started:.1f} s")
        insert_history(conn, HISTORY, first=1, last=cases)
    with plain.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE gg_case"))
        conn.execute(text("VACUUM ANALYZE case_history"))
        counts = dict(
            conn.execute(text("SELECT status, count(*) FROM gg_case GROUP BY status")).all()
        )
        case_id, grid = conn.execute(
            text("SELECT id, grid_code FROM gg_case WHERE status = 'accepted' LIMIT 1")
        ).one()
    plain.dispose()
    seconds = round(time.perf_counter() - started, 1)
    log(f"generated in {seconds} s: {counts}")
    return {
        "cases": cases,
        "by_status": counts,
        "generate_s": seconds,
        "case": case_id,
        "grid": grid,
    }


def token_for(engine: Any, username: str) -> dict[str, str]:
    with session_scope(engine) as session:
        user = session.execute(select(User).where(User.username == username)).scalar_one()
        token = issue_token(
            secret=SECRET,
            user_id=user.id or 0,
            token_version=user.token_version,
            now=NOW,
            ttl=24 * 3600,
        )
    return {"Authorization": f"Bearer {token}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None, help="loads per page (20; quick 5)")
    args = parser.parse_args()
    cases, rounds = (100_000, 5) if args.quick else (1_000_000, 20)
    rounds = args.rounds or rounds
    with scratch_postgres("console") as url:
        settings = Settings(database_url=url, secret_key=SECRET)
        engine = make_engine(settings=settings)
        upgrade(engine)
        with session_scope(engine) as session:
            seed(session, now=datetime.now(UTC))
        data = generate(url, cases)
        log("rolling up the statistics (as the scheduler does)...")
        refresh(engine, clock=lambda: NOW, tz=ZoneInfo(settings.timezone), rebuild=True)
        # As autovacuum would have by then: the visibility map set, so the counts are read from
        # the indexes alone (right after the bulk load, half the pages are not yet all-visible
        # and the board takes 0.65 s instead of 0.06 s in PostgreSQL).
        vacuum = create_engine(url, isolation_level="AUTOCOMMIT")
        with vacuum.connect() as conn:
            conn.execute(text("VACUUM ANALYZE gg_case"))
        vacuum.dispose()
        with engine.connect() as conn:
            unit = conn.execute(
                text("SELECT department_code FROM gg_case WHERE id = :id"), {"id": data["case"]}
            ).scalar_one()
        headers = {
            "dispatcher": token_for(engine, "dispatcher"),
            "department": token_for(engine, f"dept-{unit.lower()}"),
        }
        app = create_app(settings=settings, engine=engine, clock=lambda: NOW)
        pages: dict[str, Any] = {}
        with TestClient(app) as client:
            for page, paths in PAGES.items():
                who = headers["department" if page in DEPARTMENT_PAGES else "dispatcher"]
                paths = [p.format(case=data["case"], grid=data["grid"][:12]) for p in paths]
                samples: dict[str, list[float]] = {p: [] for p in paths}
                floor: list[float] = []
                statuses: dict[str, dict[int, int]] = {p: {} for p in paths}
                sizes: dict[str, int] = {}
                for p in paths:  # warm-up, not timed
                    sizes[p] = len(client.get(p, headers=who).content)
                for _ in range(rounds):
                    page_started = time.perf_counter()
                    for p in paths:
                        started = time.perf_counter()
                        res = client.get(p, headers=who)
                        samples[p].append(time.perf_counter() - started)
                        statuses[p][res.status_code] = statuses[p].get(res.status_code, 0) + 1
                    page_s = time.perf_counter() - page_started
                    started = time.perf_counter()
                    for _p in paths:
                        client.get("/healthz")
                    floor.append(time.perf_counter() - started)
                    samples.setdefault("__page__", []).append(page_s)
                calls = {
                    p: {
                        **percentiles_ms(samples[p], 50, 95),
                        "bytes": sizes[p],
                        "statuses": {str(k): v for k, v in statuses[p].items()},
                    }
                    for p in paths
                }
                pages[page] = {
                    "calls": calls,
                    "worst_call_p95_ms": max(c["p95_ms"] for c in calls.values()),
                    "whole_page_sequential": percentiles_ms(samples["__page__"], 50, 95),
                    "healthz_floor_same_count": percentiles_ms(floor, 50, 95),
                }
                log(page, pages[page]["worst_call_p95_ms"], "ms worst p95")
        engine.dispose()
    worst = max(p["worst_call_p95_ms"] for p in pages.values())
    failing = sorted(
        f"{page} {path}"
        for page, result in pages.items()
        for path, call in result["calls"].items()
        if call["p95_ms"] >= 300 or set(call["statuses"]) != {"200"}
    )
    emit(
        {
            "benchmark": "console",
            "environment": environment(),
            "data": data,
            "rounds": rounds,
            "pages": pages,
            "worst_call_p95_ms": worst,
            "target_p95_ms": 300,
            "met": not failing,
            "over_target_or_not_200": failing,
        }
    )


if __name__ == "__main__":
    main()
