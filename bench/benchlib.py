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
from sqlalchemy.engine import make_url

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
