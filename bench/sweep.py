"""The SLA sweep at scale (issue 8): one `gridgov sweep` over 1,000 due cases among 100,000 and
1,000,000 open ones on PostGIS, against the bare SQL that finds the due rows.

One scratch database, migrated and demo-seeded (921 grids, 16 departments), filled in SQL
(`benchlib.insert_cases`, `generate_series`) with open cases, dispatched or accepted, whose
clock runs and whose next SLA instant (`next_check_at`: the stage's or the limit's yellow card,
or the red card of a yellow one) lies between a minute and 30 days after `NOW`; three history
rows each (report, register, dispatch). One such database per size, all alive at once, so the
rounds alternate between them and the machine's noise hits every size alike.

A round makes a fresh due set of D cases by SQL (a different slice of ids each round, spread
over the table): half cross their yellow card (黄牌), half their red one (红牌, which also
escalates to the village), all within the last hour. Then, interleaved: the bare due query
(`SELECT case_id FROM case_due WHERE next_check_at <= now ORDER BY next_check_at LIMIT D` on
the queue the triggers keep, what a user would write), then one whole sweep as `gridgov sweep`
runs it (`dispatch.tasks.run_sweep` in batches of `GRIDGOV_SWEEP_BATCH`, history rows, events,
the commits), in process. A round with one webhook subscription to every event follows each
plain one (the outbox rows are written in the sweep's transactions). Target: a sweep under
200 ms, the same at 1 M as at 100 k.

    .venv/bin/python bench/sweep.py [--quick] [--sizes 100000,1000000] [--rounds 7] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from benchlib import (
    REPO_DIR,
    HistoryTemplate,
    emit,
    environment,
    insert_cases,
    insert_history,
    log,
    percentiles_ms,
    ratio,
    seeded_database,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine

from app.runtime import build_runtime
from core.db import make_engine, session_scope
from core.settings import Settings
from dispatch.tasks import run_sweep
from notify import webhooks

SECRET = "gridgov-bench-sweep-7d1e5b3a9c2f4e68-not-for-production"
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in 禅城, a working day
TARGET_MS = 200.0
RESULTS_DIR = REPO_DIR / "bench" / "results"

# Open cases: reported in the last ten days, dispatched ten minutes later; two in ten still
# waiting for 签收 (the stage's yellow card next), three in ten yellow (the red card next), the
# rest on time (the yellow card next). `LEAD`: how far ahead the next instant lies.
LEAD = "(interval '1 minute' * (1 + (n::bigint * 7919) % 43200))"
OPEN_T0 = "CAST(:now AS timestamptz) - (n % 240) * interval '1 hour' - interval '20 minutes'"
OPEN_CASES = {
    "status": "CASE WHEN n % 10 < 2 THEN 'dispatched' ELSE 'accepted' END",
    "warning_level": "CASE WHEN n % 10 BETWEEN 2 AND 4 THEN 'yellow' ELSE 'none' END",
    "time_limit_value": "CASE WHEN n % 2 = 0 THEN 5 ELSE 8 END",
    "time_limit_unit": "CASE WHEN n % 2 = 0 THEN 'working_days' ELSE 'working_hours' END",
    "clock_started_at": "t0 + interval '10 minutes'",
    "accepted_at": "CASE WHEN n % 10 < 2 THEN NULL ELSE t0 + interval '30 minutes' END",
    "warn_at": f"CASE WHEN n % 10 BETWEEN 2 AND 4 THEN :now - {LEAD} / 4 ELSE :now + {LEAD} END",
    "due_at": f"CASE WHEN n % 10 BETWEEN 2 AND 4 THEN :now + {LEAD} ELSE :now + {LEAD} * 1.25 END",
    "stage_warn_at": f"CASE WHEN n % 10 < 2 THEN :now + {LEAD} / 8 END",
    "stage_due_at": f"CASE WHEN n % 10 < 2 THEN :now + {LEAD} / 8 + interval '24 minutes' END",
    "next_check_at": f"CASE WHEN n % 10 < 2 THEN :now + {LEAD} / 8 ELSE :now + {LEAD} END",
    "updated_at": "t0 + interval '30 minutes'",
    "history_seq": "3",
}
HISTORY: list[HistoryTemplate] = [
    (1, "report", "reported", "0", 1, False),
    (2, "register", "registered", "5 minutes", 1, False),
    (3, "dispatch", "dispatched", "10 minutes", 1, False),
]

# A fresh due set: the cases whose id is `offset` modulo `stride`. Even slots cross their yellow
# card `age` ago, odd ones their red card (they were yellow); 5 working days each, accepted.
MAKE_DUE = """
UPDATE gg_case SET status = 'accepted', time_limit_value = 5, time_limit_unit = 'working_days',
  accepted_at = coalesce(accepted_at, dispatched_at + interval '20 minutes'),
  stage_warn_at = NULL, stage_due_at = NULL, stage_warning = 'none', escalation_level = 0,
  warning_level = CASE WHEN (id / :stride) % 2 = 0 THEN 'none' ELSE 'yellow' END,
  warn_at = CASE WHEN (id / :stride) % 2 = 0 THEN :now - age ELSE :now - interval '2 days' END,
  due_at = CASE WHEN (id / :stride) % 2 = 0 THEN :now + interval '2 days' ELSE :now - age END,
  next_check_at = :now - age
FROM (SELECT interval '1 second' * (1 + (:offset * 613 + gs * 7) % 3600) AS age, gs
      FROM generate_series(0, :due - 1) AS gs) AS a
WHERE id = a.gs * :stride + :offset + 1
"""
# The due cases from the queue the triggers keep (migration 0013), as a user would ask.
DUE_QUERY = (
    "SELECT case_id FROM case_due WHERE next_check_at <= :now ORDER BY next_check_at LIMIT :due"
)
# The sweep's own statement (`dispatch.clock.sweep`), for EXPLAIN.
SWEEP_QUERY = """
WITH claimed AS (
  SELECT case_id FROM case_due WHERE next_check_at <= :now ORDER BY next_check_at
  LIMIT :batch FOR UPDATE SKIP LOCKED
)
SELECT gg_case.* FROM gg_case JOIN claimed ON gg_case.id = claimed.case_id
WHERE gg_case.next_check_at <= :now ORDER BY gg_case.next_check_at, gg_case.id
FOR UPDATE OF gg_case SKIP LOCKED
"""
QUEUE_INDEX = "ix_case_due_next_check_at"
LAST_HISTORY_ID = "SELECT coalesce(max(id), 0) FROM case_history"  # rows are appended
OUTBOX_EVENTS = "SELECT count(*) FROM outbox_event"
WEBHOOK_URL = "http://127.0.0.1:9/bench-sweep"  # never called: the bench only fills the outbox


def fill(plain: Engine, first: int, last: int) -> float:
    """Cases `first`..`last` and their history; seconds taken (VACUUM ANALYZE and a
    CHECKPOINT included)."""
    started = time.perf_counter()
    with plain.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        insert_cases(conn, first=first, last=last, t0=OPEN_T0, params={"now": NOW}, **OPEN_CASES)
        insert_history(conn, HISTORY, first=first, last=last)
    with plain.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE gg_case"))
        conn.execute(text("VACUUM ANALYZE case_history"))
        conn.execute(text("VACUUM ANALYZE case_due"))
        # The fill leaves gigabytes of dirty pages; without this the checkpointer writes them
        # out during the first measured rounds (single sweeps of 3-4 s when it syncs).
        conn.execute(text("CHECKPOINT"))
    seconds = time.perf_counter() - started
    log(f"cases {first}..{last} in {seconds:.1f} s")
    return seconds


def subscribe(engine: Engine) -> int:
    """One subscription to every event of every case, made as `gridgov webhooks add` does."""
    with session_scope(engine) as session:
        sub = webhooks.add(
            session,
            url=WEBHOOK_URL,
            secret="bench-sweep-webhook-secret-0123456789abcdef",
            department_code=None,
            area_code=None,
            event_types=None,
            now=NOW,
        )
        assert sub.id is not None
        return sub.id


def make_due(plain: Engine, *, cases: int, due: int, offset: int) -> None:
    stride = cases // due
    assert offset < stride, "more rounds than slices of the table"
    with plain.begin() as conn:
        done = conn.execute(
            text(MAKE_DUE),
            {"now": NOW, "stride": stride, "offset": offset, "due": due},
        ).rowcount
        assert done == due, f"due set of {done} rows, wanted {due}"


def due_count(conn: Connection) -> int:
    return int(
        conn.execute(
            text("SELECT count(*) FROM case_due WHERE next_check_at <= :now"), {"now": NOW}
        ).scalar_one()
    )


def explain(plain: Engine, due: int, batch: int) -> dict[str, Any]:
    """The plans of the sweep's statement and of the bare due query, with a due set present."""

    def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node] + [n for child in node.get("Plans", []) for n in walk(child)]

    out: dict[str, Any] = {}
    with plain.begin() as conn:
        for name, sql, params in (
            ("sweep_statement", SWEEP_QUERY, {"now": NOW, "batch": batch}),
            ("due_query", DUE_QUERY, {"now": NOW, "due": due}),
        ):
            analyze = "ANALYZE, BUFFERS, " if name == "due_query" else ""
            plan = conn.execute(text(f"EXPLAIN ({analyze}FORMAT JSON) {sql}"), params).scalar_one()
            top = plan[0]["Plan"]
            nodes = walk(top)
            scans = [n for n in nodes if "Index Name" in n] or [
                n for n in nodes if "Scan" in n["Node Type"]
            ]
            out[name] = {
                "top_node": top["Node Type"],
                "nodes": [n["Node Type"] for n in nodes],
                "scan": scans[0]["Node Type"] if scans else None,
                "index": scans[0].get("Index Name") if scans else None,
                "uses_the_queue_index": any(n.get("Index Name") == QUEUE_INDEX for n in nodes),
            }
            if analyze:
                out[name]["execution_ms"] = plan[0].get("Execution Time")
                out[name]["shared_buffers_hit_read"] = [
                    top.get("Shared Hit Blocks"),
                    top.get("Shared Read Blocks"),
                ]
        conn.rollback()
    return out


class Population:
    """One database of `cases` open cases and what its rounds measured."""

    def __init__(self, url: str, cases: int, due: int) -> None:
        self.cases, self.due = cases, due
        self.settings = Settings(database_url=url, secret_key=SECRET)
        self.engine = make_engine(settings=self.settings)
        self.plain = create_engine(url)  # no statement timeout: the fill takes minutes
        self.fill_s = round(fill(self.plain, 1, cases), 1)
        self.runtime = build_runtime(self.settings, self.engine)
        self.offset = 0  # the due set's slice of ids: a new one each time
        self.samples: dict[str, list[float]] = {
            "sweep": [],
            "sweep_with_webhook": [],
            "due_query": [],
        }
        self.counts: dict[str, int] = {}
        self.history_rows = self.outbox_events = 0
        self.plan: dict[str, Any] = {}

    def dispose(self) -> None:
        self.engine.dispose()
        self.plain.dispose()

    def sweep(self) -> dict[str, int]:
        return run_sweep(
            self.engine,
            now=NOW,
            calendars=self.runtime.calendars,
            policy=self.runtime.policy,
            batch=self.settings.sweep_batch,
        )

    def round(self, measured: bool) -> None:
        """The bare due query then a sweep, plain; then a sweep with one webhook subscription."""
        for side in ("sweep", "sweep_with_webhook"):
            make_due(self.plain, cases=self.cases, due=self.due, offset=self.offset)
            self.offset += 1
            subscription = subscribe(self.engine) if side == "sweep_with_webhook" else None
            with self.plain.connect() as conn:
                history_before = conn.execute(text(LAST_HISTORY_ID)).scalar_one()
                outbox_before = conn.execute(text(OUTBOX_EVENTS)).scalar_one()
                assert due_count(conn) == self.due
                if not self.plan:
                    self.plan = explain(self.plain, self.due, self.settings.sweep_batch)
                for _ in range(3):  # the alternative, on the same due set
                    t = time.perf_counter()
                    found = conn.execute(text(DUE_QUERY), {"now": NOW, "due": self.due}).all()
                    elapsed = time.perf_counter() - t
                    assert len(found) == self.due
                    if measured and side == "sweep":
                        self.samples["due_query"].append(elapsed)
                conn.rollback()
            t = time.perf_counter()
            totals = self.sweep()
            elapsed = time.perf_counter() - t
            with self.plain.connect() as conn:
                left = due_count(conn)
                history_rows = conn.execute(text(LAST_HISTORY_ID)).scalar_one() - history_before
                outbox_events = conn.execute(text(OUTBOX_EVENTS)).scalar_one() - outbox_before
            if subscription is not None:
                with session_scope(self.engine) as session:
                    webhooks.remove(session, subscription)
            assert totals["checked"] == self.due, totals
            assert left == 0, f"{left} due cases left"
            if side == "sweep":
                self.counts, self.history_rows = totals, history_rows
            else:
                self.outbox_events = outbox_events
            if measured:
                self.samples[side].append(elapsed)
            log(f"N={self.cases} {side}: {elapsed * 1000:.0f} ms{'' if measured else ' (warm-up)'}")

    def summary(self) -> dict[str, Any]:
        sweep_median = statistics.median(self.samples["sweep"])
        webhook_median = statistics.median(self.samples["sweep_with_webhook"])
        return {
            "open_cases": self.cases,
            "due": self.due,
            "fill_s": self.fill_s,
            "sweep": {
                **percentiles_ms(self.samples["sweep"], 50, 95),
                "ms_per_due_case": round(sweep_median * 1000 / self.due, 3),
            },
            "sweep_with_webhook": {
                **percentiles_ms(self.samples["sweep_with_webhook"], 50, 95),
                "ms_per_due_case": round(webhook_median * 1000 / self.due, 3),
                "outbox_events_per_sweep": self.outbox_events,
            },
            "due_query": percentiles_ms(self.samples["due_query"], 50, 95),
            "due_query_share_of_sweep": ratio(
                statistics.median(self.samples["due_query"]), sweep_median
            ),
            "counts": self.counts,
            "history_rows_per_sweep": self.history_rows,
            "explain": self.plan,
        }


def profile(population: Population) -> str:
    """One more sweep under cProfile; the heaviest functions to stderr, the stats to a file."""
    make_due(population.plain, cases=population.cases, due=population.due, offset=population.offset)
    profiler = cProfile.Profile()
    profiler.enable()
    population.sweep()
    profiler.disable()
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / "profile_sweep.pstats"
    profiler.dump_stats(out)
    stream = io.StringIO()
    pstats.Stats(str(out), stream=stream).sort_stats("cumulative").print_stats(30)
    log(stream.getvalue())
    return str(out.relative_to(REPO_DIR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 cases, 3 rounds")
    parser.add_argument("--sizes", default=None, help="open cases, comma-separated, ascending")
    parser.add_argument("--rounds", type=int, default=None, help="measured rounds per size (7)")
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument(
        "--profile", action="store_true", help="one more sweep at the largest size, profiled"
    )
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [100_000, 1_000_000]
    if args.sizes:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    rounds = args.rounds or (3 if args.quick else 7)
    profiled = None
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        populations: list[Population] = []
        for cases in sizes:  # one database each, alive together: the rounds alternate
            url = stack.enter_context(seeded_database(f"sweep{cases}", postgres=True))
            population = Population(url, cases, args.due)
            stack.callback(population.dispose)
            populations.append(population)
        for r in range(rounds + 1):  # round 0 warms up
            for population in populations:
                population.round(measured=r > 0)
        results = {str(p.cases): p.summary() for p in populations}
        if args.profile:
            profiled = profile(populations[-1])
    small, large = results[str(sizes[0])], results[str(sizes[-1])]
    worst_p95 = max(r["sweep"]["p95_ms"] for r in results.values())
    emit(
        {
            "benchmark": "sweep",
            "environment": environment(),
            # Other work on the machine (2 cores): every figure stretches with it, the ratios less.
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "now": NOW.isoformat(),
            "batch": populations[-1].settings.sweep_batch,
            "rounds": rounds,
            "sizes": results,
            "largest_over_smallest": {
                "sizes": [sizes[0], sizes[-1]],
                "sweep_median": ratio(large["sweep"]["p50_ms"], small["sweep"]["p50_ms"]),
                "sweep_with_webhook_median": ratio(
                    large["sweep_with_webhook"]["p50_ms"], small["sweep_with_webhook"]["p50_ms"]
                ),
                "due_query_median": ratio(
                    large["due_query"]["p50_ms"], small["due_query"]["p50_ms"]
                ),
            },
            "target_ms": TARGET_MS,
            "worst_sweep_p95_ms": worst_p95,
            "met": worst_p95 < TARGET_MS,
            "profile": profiled,
        }
    )


if __name__ == "__main__":
    main()
