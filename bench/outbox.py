"""Webhook deliveries per second: `gridgov outbox run --once` workers against a local receiver.

A fresh, migrated, demo-seeded database (SQLite file by default, PostGIS with --postgres) gets
one real case (filed through the app) and one subscription to a receiver on 127.0.0.1 that
answers 204 to each POST (a threaded http.server in this process). N deliveries of that case's
snapshot are written as distinct cases (so no per-case ordering holds them back), then 1 and 2
worker processes (or --workers) drain them; each run is timed from start to the last worker's
exit, and the receiver counts what arrived (each delivery id once).

    .venv/bin/python bench/outbox.py [--quick] [--postgres] [--deliveries N]

Prints one JSON object on stdout; progress on stderr. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchlib import emit, environment, log, seeded_database
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select
from sqlmodel import Session

from app.main import create_app
from core.db import make_engine, session_scope
from core.models import User
from core.security import issue_token
from core.settings import Settings
from notify import webhooks
from notify.models import OutboxDelivery, OutboxEvent

SECRET = "gridgov-bench-outbox-3e9a1c7b5d2f8046-secret"
HOOK_SECRET = "bench-hook-secret-0123456789"
GRID = "440604011001001"
BIN = Path(sys.executable).with_name("gridgov")


@contextmanager
def receiver() -> Iterator[tuple[str, Counter[str]]]:
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the workers' clients reuse connections

        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                seen[self.headers["X-Gridgov-Delivery"]] += 1
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()


def one_case_event(url: str) -> OutboxEvent:
    """File one real case through the app (with a subscription, so the outbox stores it)."""
    engine = make_engine(url)
    settings = Settings(database_url=url, secret_key=SECRET)
    app = create_app(settings=settings, engine=engine)
    with Session(engine) as session:
        user = session.execute(select(User).where(User.username == f"gw{GRID}")).scalar_one()
        assert user.id is not None
        token = issue_token(
            secret=SECRET,
            user_id=user.id,
            token_version=user.token_version,
            now=datetime.now(UTC),
            ttl=3600,
        )
    with TestClient(app) as client:
        res = client.post(
            "/v1/reports",
            json={
                "client_id": "bench-outbox-1",
                "lat": 23.009244,
                "lng": 113.126964,
                "crs": "gcj02",
                "description": "石湾镇街道某路口井盖丢失，很危险",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert res.status_code == 201, res.text
    with session_scope(engine) as session:
        event = session.execute(select(OutboxEvent)).scalar_one()
        session.expunge(event)
    engine.dispose()
    return event


def fill(url: str, template: OutboxEvent, subscription_id: int, count: int) -> None:
    """`count` pending deliveries of distinct (made-up) cases, written in bulk."""
    engine = make_engine(url)
    now = datetime.now(UTC) - timedelta(seconds=1)
    with session_scope(engine) as session:
        session.execute(delete(OutboxDelivery))
        session.execute(delete(OutboxEvent))
        ids = range(1, count + 1)
        session.execute(
            insert(OutboxEvent),
            [
                {
                    "id": i,
                    "type": template.type,
                    "case_id": 1_000_000 + i,
                    "occurred_at": now,
                    "case_data": template.case_data,
                    "escalation": None,
                }
                for i in ids
            ],
        )
        session.execute(
            insert(OutboxDelivery),
            [
                {
                    "event_id": i,
                    "subscription_id": subscription_id,
                    "case_id": 1_000_000 + i,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "retry_until": now + timedelta(days=1),
                }
                for i in ids
            ],
        )
    engine.dispose()


def run_workers(url: str, workers: int) -> float:
    env = {**os.environ, "GRIDGOV_DATABASE_URL": url, "GRIDGOV_SECRET_KEY": SECRET}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [str(BIN), "outbox", "run", "--once"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise SystemExit(f"worker failed: {err.decode(errors='replace')[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer deliveries, for a smoke run")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostGIS database")
    parser.add_argument("--deliveries", type=int, default=None)
    parser.add_argument("--workers", default="1,2", help="worker counts to time, e.g. 1,2,4")
    args = parser.parse_args()
    count = args.deliveries or (300 if args.quick else 3000)
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with seeded_database("outbox", args.postgres) as url, receiver() as (hook_url, seen):
        engine = make_engine(url)
        with session_scope(engine) as session:
            sub = webhooks.add(
                session,
                url=hook_url,
                secret=HOOK_SECRET,
                department_code=None,
                area_code=None,
                event_types=None,
                now=datetime.now(UTC),
            )
            sub_id = sub.id
        engine.dispose()
        assert sub_id is not None
        template = one_case_event(url)
        for workers in (int(w) for w in args.workers.split(",")):
            fill(url, template, sub_id, count)
            seen.clear()
            log(f"{count} deliveries, {workers} worker(s)...")
            seconds = run_workers(url, workers)
            runs.append(
                {
                    "workers": workers,
                    "deliveries": count,
                    "seconds": round(seconds, 3),
                    "deliveries_per_s": round(count / seconds, 1),
                    "received_distinct": len(seen),
                    "received_total": sum(seen.values()),
                }
            )
            log(runs[-1])
    settings = Settings()
    emit(
        {
            "bench": "outbox",
            "quick": args.quick,
            "database": "postgis" if args.postgres else "sqlite",
            "environment": environment(),
            "config": {
                "batch": settings.outbox_batch,
                "concurrency": settings.outbox_concurrency,
                "receiver": "http.server ThreadingHTTPServer in the bench process, 204",
                "timing": "process start to exit of the last worker (includes imports, ~1 s)",
            },
            "runs": runs,
            "all_delivered_once": all(
                r["received_distinct"] == r["deliveries"] == r["received_total"] for r in runs
            ),
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
