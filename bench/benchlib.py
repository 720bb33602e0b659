"""What the benchmarks share: loopback-only PostgreSQL databases, percentiles, progress, output.

Not a test helper and not imported by the app: the bench scripts put `bench/` on sys.path by
being run as `python bench/<name>.py`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url

POSTGRES_ADMIN_URL = os.environ.get(
    "GRIDGOV_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
REPO_DIR = Path(__file__).resolve().parent.parent
# Shared project data (boundaries), next to the repository unless told otherwise.
SHARED_DIR = Path(os.environ.get("GRIDGOV_BENCH_SHARED_DIR", REPO_DIR / ".." / "shared"))


def log(*parts: object) -> None:
    """Progress goes to stderr; stdout carries only the one JSON result."""
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, ensure_ascii=False, indent=2))


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def admin_url() -> str:
    url = make_url(POSTGRES_ADMIN_URL)
    if url.host not in LOOPBACK:
        raise SystemExit(f"benchmarks only talk to 127.0.0.1; refusing host {url.host!r}")
    return POSTGRES_ADMIN_URL


@contextmanager
def scratch_postgres(purpose: str) -> Iterator[str]:
    """A fresh, empty database named gridgov_bench_<purpose>_<pid>_<rand>; dropped afterwards."""
    base = make_url(admin_url())
    name = f"gridgov_bench_{purpose}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        log(f"created database {name}")
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        log(f"dropped database {name}")


@contextmanager
def scratch_database(purpose: str, postgres: bool) -> Iterator[str]:
    """A fresh, empty database (PostgreSQL, or a SQLite file in a temporary folder); removed
    afterwards."""
    if postgres:
        with scratch_postgres(purpose) as url:
            yield url
        return
    tmp = Path(tempfile.mkdtemp(prefix=f"gridgov_bench_{purpose}_"))
    try:
        yield f"sqlite:///{tmp / 'gridgov.db'}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def seeded_database(purpose: str, postgres: bool) -> Iterator[str]:
    """`scratch_database`, migrated and seeded with the demo district."""
    from app.demo import seed
    from app.migrate import upgrade
    from core.db import make_engine, session_scope

    with scratch_database(purpose, postgres) as url:
        log("migrating and seeding the demo district...")
        engine = make_engine(url)
        try:
            upgrade(engine)
            with session_scope(engine) as session:
                seed(session, now=datetime.now(UTC))
        finally:
            engine.dispose()
        yield url


def percentiles_us(samples_ns: Sequence[int] | np.ndarray, *qs: float) -> dict[str, float]:
    """p<q> in microseconds, one decimal, e.g. {"p50_us": 12.3}."""
    arr = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    return {f"p{q:g}_us": round(float(np.percentile(arr, q)), 1) for q in qs}


def percentiles_ms(samples_s: Sequence[float] | np.ndarray, *qs: float) -> dict[str, float]:
    """p<q> in milliseconds, two decimals, e.g. {"p99_ms": 41.07}."""
    arr = np.asarray(samples_s, dtype=np.float64) * 1000.0
    return {f"p{q:g}_ms": round(float(np.percentile(arr, q)), 2) for q in qs}


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


# Generated cases (`insert_cases`): every column of `gg_case` as an SQL expression over `n` (the
# case number, also its id), `t0` (its report instant), `gi` / `di` (its place in `g`, the demo
# grids with a point inside each, and in `d`, the department codes). The defaults make an open
# case, accepted by its unit; each bench overrides what its figures read.
CASE_DEFAULTS: dict[str, str] = {
    "id": "n",
    "case_no": "lpad(n::text, 14, '0')",
    "status": "'accepted'",
    "channel": "'grid_worker'",
    "description": "'某路口井盖丢失'",
    "lat": "g.lats[gi]",
    "lng": "g.lngs[gi]",
    "location": "ST_SetSRID(ST_MakePoint(g.lngs[gi], g.lats[gi]), 4326)",
    "grid_code": "g.codes[gi]",
    "grid_rule": "'inside'",
    "category_code": "'08'",
    "subcategory_code": "'0801'",
    "department_code": "d.codes[di]",
    "urgency": "'normal'",
    "time_limit_value": "4",
    "time_limit_unit": "'working_hours'",
    "warning_level": "'none'",
    "escalation_level": "0",
    "extension_count": "0",
    "return_count": "0",
    "redo_count": "0",
    "paused_seconds": "0.0",
    "clock_started_at": "t0",
    "due_at": "t0 + interval '6 hours'",
    "reported_at": "t0",
    "registered_at": "t0 + interval '5 minutes'",
    "dispatched_at": "t0 + interval '10 minutes'",
    "updated_at": "t0",
    "history_seq": "12",
    "history_head": "'x'",
    "version": "1",
}

_CASES_SQL = """
WITH g AS (
       SELECT array_agg(code ORDER BY code) AS codes,
              array_agg(ST_Y(p) ORDER BY code) AS lats, array_agg(ST_X(p) ORDER BY code) AS lngs
       FROM (SELECT code, ST_PointOnSurface(geom) AS p FROM area WHERE level = 'grid') AS a),
     d AS (SELECT array_agg(code ORDER BY code) AS codes FROM department),
     s AS (
       SELECT n, {t0} AS t0, 1 + n % cardinality(g.codes) AS gi,
              1 + (n / 7) % cardinality(d.codes) AS di
       FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS n, g, d
     )
INSERT INTO gg_case ({columns})
SELECT {values}
FROM s, g, d
"""


def insert_cases(
    conn: Connection,
    *,
    first: int,
    last: int,
    t0: str,
    params: dict[str, Any] | None = None,
    **columns: str,
) -> None:
    """Cases `first`..`last` in one INSERT … SELECT generate_series (no ORM: a million rows in
    about a minute); `t0` and `columns` are SQL over the names of `CASE_DEFAULTS`, `params` their
    bound values. Moves the id sequence past `last`."""
    chosen = {**CASE_DEFAULTS, **columns}
    sql = _CASES_SQL.format(t0=t0, columns=", ".join(chosen), values=",\n  ".join(chosen.values()))
    conn.execute(text(sql), {**(params or {}), "first": first, "last": last})
    conn.execute(text("SELECT setval('gg_case_id_seq', :n)"), {"n": last})


# History rows of generated cases: one template per kind of entry, (seq, action, to_status,
# after the report, every: the cases whose id it divides have it, closed_only).
HistoryTemplate = tuple[int, str, str, str, int, bool]

_HISTORY_SQL = """
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
    ELSE '{{}}'::json END,
  'x', 'x'
FROM gg_case c
JOIN (VALUES {templates}) AS t(seq, action, to_status, after, every, closed_only)
  ON c.id % t.every = 0
WHERE (NOT t.closed_only OR c.status = 'closed') AND c.id BETWEEN :first AND :last
"""


def insert_history(
    conn: Connection, templates: Sequence[HistoryTemplate], *, first: int, last: int
) -> None:
    """History rows for cases `first`..`last`, from the templates, as the workflow writes them
    (the hash columns are placeholders: `gridgov audit verify` does not pass on these)."""
    values = ", ".join(
        f"({seq}, '{action}', '{status}', interval '{after}', {every}, {str(closed).lower()})"
        for seq, action, status, after, every, closed in templates
    )
    conn.execute(text(_HISTORY_SQL.format(templates=values)), {"first": first, "last": last})
