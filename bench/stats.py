"""考核 statistics over 1,000,000 cases on PostGIS: `GET /v1/stats/departments` and
`GET /v1/stats/areas?level=town|village|grid` (JSON and CSV) for a month, a quarter and a year,
against the direct SQL a user would write for the same figures, interleaved in one run; also
a day and a week.

The cases (and their history rows) are generated in SQL (`generate_series`) in a scratch
database migrated to head and demo-seeded (921 grids, 16 departments): the cases spread evenly
over 2026, nine in ten closed, with dispatches, returns, extensions, failed checks, reopens and
visits in the history as the workflow writes them. Target: p95 < 300 ms per endpoint.

    .venv/bin/python bench/stats.py [--quick] [--rounds N]   # --quick: 100,000 cases, 5 rounds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import emit, environment, log, percentiles_ms, scratch_postgres  # noqa: E402
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

SECRET = "gridgov-bench-stats-4f0c2a9e8b7d6153-not-for-production"

CASES_SQL = """
WITH g AS (SELECT array_agg(code ORDER BY code) AS codes FROM area WHERE level = 'grid'),
     d AS (SELECT array_agg(code ORDER BY code) AS codes FROM department),
     s AS (
       SELECT n, timestamptz '2026-01-01 00:00+08' + n * (interval '365 days' / :cases) AS t0
       FROM generate_series(1, :cases) AS n
     )
INSERT INTO gg_case (
  id, case_no, status, channel, description, lat, lng, location, grid_code, grid_rule,
  category_code, subcategory_code, department_code, urgency, time_limit_value, time_limit_unit,
  warning_level, escalation_level, extension_count, return_count, redo_count, paused_seconds,
  clock_started_at, due_at, reported_at, registered_at, dispatched_at, resolved_at, closed_at,
  handling_seconds, updated_at, history_seq, history_head, version)
SELECT n, lpad(n::text, 14, '0'), CASE WHEN n % 10 = 0 THEN 'accepted' ELSE 'closed' END,
  'grid_worker', '某路口井盖丢失', 23.0, 113.1, ST_SetSRID(ST_MakePoint(113.1, 23.0), 4326),
  g.codes[1 + n % cardinality(g.codes)], 'inside', '08', '0801',
  d.codes[1 + (n / 7) % cardinality(d.codes)], 'normal', 4, 'working_hours', 'none', 0, 0, 0, 0,
  0.0, t0, t0 + interval '6 hours', t0, t0 + interval '5 minutes', t0 + interval '10 minutes',
  CASE WHEN n % 10 = 0 THEN NULL ELSE t0 + (n % 11) * interval '1 hour' END,
  CASE WHEN n % 10 = 0 THEN NULL ELSE t0 + (n % 11) * interval '1 hour' + interval '1 hour' END,
  CASE WHEN n % 10 = 0 THEN NULL ELSE (n % 11) * 2400.0 END,
  t0, 12, 'x', 1
FROM s, g, d
"""

# One template row per kind of history entry; `every` picks the cases that have it.
HISTORY_SQL = """
INSERT INTO case_history (case_id, seq, action, from_status, to_status, actor_id, actor_role,
  actor_name, at, reason, data, prev_hash, hash)
SELECT c.id, t.seq, t.action, NULL, t.to_status, NULL, 'dispatcher', 'bench',
  c.reported_at + t.after, NULL,
  CASE t.action
    WHEN 'dispatch' THEN json_build_object('department_code', c.department_code)
    WHEN 'return' THEN json_build_object('department_code', c.department_code)
    WHEN 'visit' THEN json_build_object('satisfaction',
      (ARRAY['satisfied', 'basically_satisfied', 'dissatisfied'])[1 + c.id % 3])
    WHEN 'verify' THEN json_build_object('passed', t.to_status = 'verified')
    ELSE '{}'::json END,
  'x', 'x'
FROM gg_case c
JOIN (VALUES
  (1, 'report', 'reported', interval '0', 1, false),
  (2, 'register', 'registered', interval '5 minutes', 1, false),
  (3, 'return', 'registered', interval '7 minutes', 25, false),
  (4, 'dispatch', 'dispatched', interval '10 minutes', 1, false),
  (5, 'accept', 'accepted', interval '20 minutes', 1, false),
  (6, 'extend', 'accepted', interval '30 minutes', 17, false),
  (7, 'verify', 'dispatched', interval '40 minutes', 13, true),
  (8, 'resolve', 'resolved', interval '50 minutes', 1, true),
  (9, 'verify', 'verified', interval '55 minutes', 1, true),
  (10, 'close', 'closed', interval '60 minutes', 1, true),
  (11, 'visit', 'closed', interval '2 hours', 3, true),
  (12, 'reopen', 'dispatched', interval '3 hours', 50, true)
) AS t(seq, action, to_status, after, every, closed_only) ON c.id % t.every = 0
WHERE NOT t.closed_only OR c.status = 'closed'
"""

# The figures as a user would write them by hand: one statement for the cases closed in the
# period, one for the history entries in it.
DIRECT_CLOSED = """
SELECT {key} AS k, count(*) AS closed,
  count(*) FILTER (WHERE resolved_at <= due_at) AS on_time,
  avg(handling_seconds) / 3600 AS avg_hours
FROM gg_case
WHERE status = 'closed' AND closed_at >= :start AND closed_at < :end
GROUP BY 1
"""
DIRECT_HISTORY = """
SELECT {key} AS k,
  count(*) FILTER (WHERE h.action = 'dispatch'
                   OR (h.action = 'recategorize' AND h.to_status = 'dispatched'
                       AND h.data->>'department_code' <> h.data->>'department_from')) AS received,
  count(*) FILTER (WHERE h.action = 'return') AS returned,
  count(*) FILTER (WHERE h.action IN ('extend', 'approve_extension')) AS extended,
  count(*) FILTER (WHERE h.action = 'reopen'
                   OR (h.action = 'verify' AND h.to_status <> 'verified')) AS redone,
  count(*) FILTER (WHERE h.action = 'visit') AS visited,
  count(*) FILTER (WHERE h.action = 'visit'
                   AND h.data->>'satisfaction' IN ('satisfied', 'basically_satisfied')) AS sat
FROM case_history h JOIN gg_case c ON c.id = h.case_id
WHERE h.action IN ('dispatch', 'recategorize', 'return', 'extend', 'approve_extension',
                   'verify', 'reopen', 'visit')
  AND h.at >= :start AND h.at < :end
GROUP BY 1
"""
DIRECT_KEYS = {
    "departments": ("department_code", "coalesce(h.data->>'department_code', c.department_code)"),
    "town": ("substr(grid_code, 1, 9)", "substr(c.grid_code, 1, 9)"),
    "village": ("substr(grid_code, 1, 12)", "substr(c.grid_code, 1, 12)"),
    "grid": ("grid_code", "c.grid_code"),
}
PERIODS = {
    "day": ("2026-11-20", "2026-11-20"),
    "week": ("2026-11-16", "2026-11-22"),
    "month": ("2026-11-01", "2026-11-30"),
    "quarter": ("2026-07-01", "2026-09-30"),
    "year": ("2026-01-01", "2026-12-31"),
}
LOCAL_MIDNIGHT = "{}T00:00:00+08:00"


def generate(engine: Engine, cases: int) -> dict[str, Any]:
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text(CASES_SQL), {"cases": cases})
        log(f"{cases} cases in {time.perf_counter() - started:.1f} s")
        conn.execute(text(HISTORY_SQL))
        conn.execute(text("SELECT setval('gg_case_id_seq', :n)"), {"n": cases})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE gg_case"))
        conn.execute(text("VACUUM ANALYZE case_history"))
        rows = conn.execute(text("SELECT count(*) FROM case_history")).scalar_one()
    seconds = round(time.perf_counter() - started, 1)
    log(f"{rows} history rows; generated in {seconds} s")
    return {"cases": cases, "history_rows": rows, "generate_s": seconds}


def direct(engine: Engine, what: str, first: str, last: str) -> None:
    case_key, history_key = DIRECT_KEYS[what]
    end = datetime.fromisoformat(LOCAL_MIDNIGHT.format(last)).timestamp() + 86400
    bounds = {
        "start": datetime.fromisoformat(LOCAL_MIDNIGHT.format(first)),
        "end": datetime.fromtimestamp(end, UTC),
    }
    with engine.connect() as conn:
        conn.execute(text(DIRECT_CLOSED.format(key=case_key)), bounds).all()
        conn.execute(text(DIRECT_HISTORY.format(key=history_key)), bounds).all()


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
        with session_scope(engine) as session:
            user = session.execute(select(User).where(User.username == "dispatcher")).scalar_one()
            token = issue_token(
                secret=SECRET,
                user_id=user.id or 0,
                token_version=user.token_version,
                now=datetime.now(UTC),
                ttl=3600,
            )
        headers = {"Authorization": f"Bearer {token}"}
        results: dict[str, Any] = {}
        with TestClient(create_app(settings=settings, engine=engine)) as client:
            for period, (first, last) in PERIODS.items():
                for what in DIRECT_KEYS:
                    path = (
                        "/v1/stats/departments"
                        if what == "departments"
                        else f"/v1/stats/areas?level={what}"
                    )
                    path += ("&" if "?" in path else "?") + f"from={first}&to={last}"
                    api_s, csv_s, sql_s = [], [], []
                    items = 0
                    # A statement past GRIDGOV_STATEMENT_TIMEOUT_SECONDS answers 503.
                    statuses: dict[int, int] = {}
                    for _ in range(rounds):  # interleaved: noise hits every side
                        t = time.perf_counter()
                        res = client.get(path, headers=headers)
                        api_s.append(time.perf_counter() - t)
                        statuses[res.status_code] = statuses.get(res.status_code, 0) + 1
                        if res.status_code == 200:
                            items = len(res.json()["items"])
                        t = time.perf_counter()
                        res = client.get(path + "&format=csv", headers=headers)
                        csv_s.append(time.perf_counter() - t)
                        statuses[res.status_code] = statuses.get(res.status_code, 0) + 1
                        t = time.perf_counter()
                        direct(plain, what, first, last)
                        sql_s.append(time.perf_counter() - t)
                    key = f"{period}_{what}"
                    results[key] = {
                        "items": items,
                        "statuses": {str(k): v for k, v in sorted(statuses.items())},
                        "api": percentiles_ms(api_s, 50, 95),
                        "api_csv": percentiles_ms(csv_s, 50, 95),
                        "direct_sql": percentiles_ms(sql_s, 50, 95),
                        "api_over_sql_median": round(
                            statistics.median(api_s) / statistics.median(sql_s), 2
                        ),
                    }
                    log(key, results[key])
        engine.dispose()
        plain.dispose()
    worst = max(max(r["api"]["p95_ms"], r["api_csv"]["p95_ms"]) for r in results.values())
    met = sorted(
        k for k, r in results.items() if max(r["api"]["p95_ms"], r["api_csv"]["p95_ms"]) < 300
    )
    emit(
        {
            "benchmark": "stats",
            "environment": environment(),
            "data": data,
            "rounds": rounds,
            "results": results,
            "worst_p95_ms": worst,
            "target_p95_ms": 300,
            "met": worst < 300,
            "met_by": met,
        }
    )


if __name__ == "__main__":
    main()
