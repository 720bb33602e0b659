"""考核 statistics over 1,000,000 cases on PostGIS: `GET /v1/stats/departments` and
`GET /v1/stats/areas?level=town|village|grid` for a day, a month and a year, answered from the
daily rollup (`stats_daily`, `stats_monthly`) against the same endpoints computing every day
live from the history and the cases (the rollup switched off by clearing
`stats_rollup.rolled_through`), interleaved in one run; also a month that ends in days not
rolled yet (today and after: live, summed with the rolled days), CSV, and how long the rollup
takes to build: a full rebuild, one day, and a scheduler tick with nothing to do.

The cases (and their history rows) are generated in SQL (`generate_series`) in a scratch
database migrated to head and demo-seeded (921 grids, 16 departments): the cases spread evenly
over 2026, nine in ten closed, with dispatches, returns, extensions, failed checks, reopens and
visits in the history as the workflow writes them. The clock stands at 1 January 2027, 10:00
local, so every day of 2026 is rolled. Target: p95 < 300 ms per endpoint.

    .venv/bin/python bench/stats.py [--quick] [--rounds N]   # --quick: 100,000 cases, 5 rounds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, date, datetime
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
from sqlalchemy.engine import Engine  # noqa: E402

from app.demo import seed  # noqa: E402
from app.main import create_app  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from core.db import make_engine, session_scope  # noqa: E402
from core.models import User  # noqa: E402
from core.security import issue_token  # noqa: E402
from core.settings import Settings  # noqa: E402
from dispatch.stats_rollup import refresh  # noqa: E402

SECRET = "gridgov-bench-stats-4f0c2a9e8b7d6153-not-for-production"

# Over the year 2026, nine in ten closed; the rest are the defaults of `benchlib.insert_cases`.
CASE_T0 = "timestamptz '2026-01-01 00:00+08' + n * (interval '365 days' / :cases)"
CLOSED_CASES = {
    "status": "CASE WHEN n % 10 = 0 THEN 'accepted' ELSE 'closed' END",
    "resolved_at": "CASE WHEN n % 10 = 0 THEN NULL ELSE t0 + (n % 11) * interval '1 hour' END",
    "closed_at": "CASE WHEN n % 10 = 0 THEN NULL"
    " ELSE t0 + (n % 11) * interval '1 hour' + interval '1 hour' END",
    "handling_seconds": "CASE WHEN n % 10 = 0 THEN NULL ELSE (n % 11) * 2400.0 END",
}

# One template row per kind of history entry; `every` picks the cases that have it.
HISTORY: list[HistoryTemplate] = [
    (1, "report", "reported", "0", 1, False),
    (2, "register", "registered", "5 minutes", 1, False),
    (3, "return", "registered", "7 minutes", 25, False),
    (4, "dispatch", "dispatched", "10 minutes", 1, False),
    (5, "accept", "accepted", "20 minutes", 1, False),
    (6, "extend", "accepted", "30 minutes", 17, False),
    (7, "verify", "dispatched", "40 minutes", 13, True),
    (8, "resolve", "resolved", "50 minutes", 1, True),
    (9, "verify", "verified", "55 minutes", 1, True),
    (10, "close", "closed", "60 minutes", 1, True),
    (11, "visit", "closed", "2 hours", 3, True),
    (12, "reopen", "dispatched", "3 hours", 50, True),
]

WHATS = {
    "departments": "/v1/stats/departments?",
    "town": "/v1/stats/areas?level=town&",
    "village": "/v1/stats/areas?level=village&",
    "grid": "/v1/stats/areas?level=grid&",
}
PERIODS = {
    "day": ("2026-11-20", "2026-11-20"),
    "month": ("2026-11-01", "2026-11-30"),
    "year": ("2026-01-01", "2026-12-31"),
    # Rolled through 31 December, live from 1 January (today) on.
    "month_to_today": ("2026-12-15", "2027-01-13"),
}
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2027, 1, 1, 2, 0, tzinfo=UTC)  # 10:00 local
# The live side of a year runs into the statement timeout (503 after 5 s): fewer calls.
LIVE_ROUNDS_CAP = {"year": 3}


def generate(engine: Engine, cases: int) -> dict[str, Any]:
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        insert_cases(conn, first=1, last=cases, t0=CASE_T0, params={"cases": cases}, **CLOSED_CASES)
        log(f"{cases} cases in {time.perf_counter() - started:.1f} s")
        insert_history(conn, HISTORY, first=1, last=cases)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE gg_case"))
        conn.execute(text("VACUUM ANALYZE case_history"))
        rows = conn.execute(text("SELECT count(*) FROM case_history")).scalar_one()
    seconds = round(time.perf_counter() - started, 1)
    log(f"{rows} history rows; generated in {seconds} s")
    return {"cases": cases, "history_rows": rows, "generate_s": seconds}


def set_rolled_through(engine: Engine, day: date | None) -> None:
    """Switch the rollup on (the last rolled day) or off (None: every day live)."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE stats_rollup SET rolled_through = :d WHERE id = 1"), {"d": day})


def timed_refresh(engine: Engine, **kwargs: Any) -> dict[str, Any]:
    started = time.perf_counter()
    result = refresh(engine, clock=lambda: NOW, tz=TZ, **kwargs)
    seconds = round(time.perf_counter() - started, 2)
    log("refresh", kwargs, seconds, "s", result.as_json())
    return {"seconds": seconds, "days": result.days, "daily_rows": result.rows}


def call(client: TestClient, path: str, headers: dict[str, str], statuses: dict[int, int]) -> float:
    started = time.perf_counter()
    res = client.get(path, headers=headers)
    elapsed = time.perf_counter() - started
    statuses[res.status_code] = statuses.get(res.status_code, 0) + 1
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None, help="calls per endpoint (20; quick 5)")
    args = parser.parse_args()
    cases, rounds = (100_000, 5) if args.quick else (1_000_000, 20)
    rounds = args.rounds or rounds
    with scratch_postgres("stats") as url:
        settings = Settings(database_url=url, secret_key=SECRET)
        engine = make_engine(settings=settings)
        upgrade(engine)
        with session_scope(engine) as session:
            seed(session, now=datetime.now(UTC))
        plain = create_engine(url)  # no statement timeout: the generation takes minutes
        data = generate(plain, cases)
        # The refreshes run as the scheduler does: on the app's engine (5 s statement timeout).
        build = {
            "full_rebuild": timed_refresh(engine, rebuild=True),
            "one_day": timed_refresh(engine, first=date(2026, 11, 20), last=date(2026, 11, 20)),
            "one_month": timed_refresh(engine, first=date(2026, 11, 1), last=date(2026, 11, 30)),
            "tick_nothing_due": timed_refresh(engine),
        }
        with plain.connect() as conn:
            build["daily_rows"] = conn.execute(text("SELECT count(*) FROM stats_daily")).scalar()
            build["monthly_rows"] = conn.execute(
                text("SELECT count(*) FROM stats_monthly")
            ).scalar()
        with plain.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE stats_daily"))
            conn.execute(text("VACUUM ANALYZE stats_monthly"))
        rolled = date(2026, 12, 31)
        with session_scope(engine) as session:
            user = session.execute(select(User).where(User.username == "dispatcher")).scalar_one()
            token = issue_token(
                secret=SECRET,
                user_id=user.id or 0,
                token_version=user.token_version,
                now=NOW,
                ttl=24 * 3600,
            )
        headers = {"Authorization": f"Bearer {token}"}
        results: dict[str, Any] = {}
        app = create_app(settings=settings, engine=engine, clock=lambda: NOW)
        with TestClient(app) as client:
            for period, (first, last) in PERIODS.items():
                for what, prefix in WHATS.items():
                    path = f"{prefix}from={first}&to={last}"
                    roll_s, csv_s, live_s = [], [], []
                    statuses: dict[str, dict[int, int]] = {"rollup": {}, "live": {}}
                    same = True
                    set_rolled_through(plain, rolled)
                    client.get(path, headers=headers)  # warm-up, not timed
                    for i in range(rounds):  # interleaved: noise hits both sides
                        set_rolled_through(plain, rolled)
                        roll_s.append(call(client, path, headers, statuses["rollup"]))
                        csv_s.append(
                            call(client, path + "&format=csv", headers, statuses["rollup"])
                        )
                        if i == 0:
                            with_rollup = client.get(path, headers=headers).json()
                        if i < LIVE_ROUNDS_CAP.get(period, rounds):
                            set_rolled_through(plain, None)
                            live_s.append(call(client, path, headers, statuses["live"]))
                            if i == 0 and statuses["live"].get(200):
                                same = client.get(path, headers=headers).json() == with_rollup
                    set_rolled_through(plain, rolled)
                    key = f"{period}_{what}"
                    results[key] = {
                        "items": len(with_rollup["items"]),
                        "statuses": {
                            side: {str(k): v for k, v in sorted(counts.items())}
                            for side, counts in statuses.items()
                        },
                        "rollup": percentiles_ms(roll_s, 50, 95),
                        "rollup_csv": percentiles_ms(csv_s, 50, 95),
                        "live": percentiles_ms(live_s, 50, 95),
                        "live_calls": len(live_s),
                        "live_over_rollup_median": round(
                            statistics.median(live_s) / statistics.median(roll_s), 1
                        ),
                        "same_figures": same,
                    }
                    log(key, results[key])
        engine.dispose()
        plain.dispose()
    worst = max(max(r["rollup"]["p95_ms"], r["rollup_csv"]["p95_ms"]) for r in results.values())
    met = sorted(
        k for k, r in results.items() if max(r["rollup"]["p95_ms"], r["rollup_csv"]["p95_ms"]) < 300
    )
    emit(
        {
            "benchmark": "stats",
            "environment": environment(),
            "data": data,
            "rounds": rounds,
            "refresh": build,
            "results": results,
            "all_same_figures": all(r["same_figures"] for r in results.values()),
            "worst_rollup_p95_ms": worst,
            "target_p95_ms": 300,
            "met": worst < 300,
            "met_by": met,
        }
    )


if __name__ == "__main__":
    main()
