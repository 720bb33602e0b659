"""APScheduler inside `gridgov serve`: the SLA sweep every minute, the outbox delivery worker
every few seconds and the 考核 rollup refresh every few minutes (several processes may run
them all)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from apscheduler.schedulers.background import BackgroundScheduler

from app.runtime import Runtime
from core.db import database_trouble
from core.errors import GridgovError
from dispatch.stats_rollup import refresh as refresh_stats
from dispatch.tasks import run_sweep
from notify.delivery import Breaker, drain, make_client
from notify.webhooks import policy_from

log = logging.getLogger("gridgov.scheduler")


def sweep_job(runtime: Runtime) -> None:
    started = time.perf_counter()
    try:
        totals = run_sweep(
            runtime.engine,
            now=runtime.now(),
            calendars=runtime.calendars,
            policy=runtime.policy,
            batch=runtime.settings.sweep_batch,
        )
    except Exception as exc:  # a failed sweep must not stop the scheduler; the next one retries
        runtime.metrics.sweep_failed()
        trouble = exc if isinstance(exc, GridgovError) else database_trouble(exc)
        if trouble is None:
            log.exception("SLA sweep failed")
        else:  # database down, too slow or busy: expected in an outage, no traceback
            log.warning("SLA sweep skipped (%s: %s); the next tick retries", trouble.code, exc)
    else:
        runtime.metrics.sweep_done(totals, seconds=time.perf_counter() - started)


def outbox_job(runtime: Runtime, client: httpx.Client, breaker: Breaker) -> None:
    """Deliver what is due (the sends happen outside any transaction: notify/delivery.py)."""
    try:
        drain(
            runtime.engine,
            clock=runtime.now,
            policy=policy_from(runtime.settings),
            catalogue=lambda: runtime.taxonomy.get().catalogue,
            client=client,
            breaker=breaker,
        )
    except Exception as exc:  # the next tick retries; claims of this one expire
        trouble = exc if isinstance(exc, GridgovError) else database_trouble(exc)
        if trouble is None:
            log.exception("outbox delivery failed")
        else:
            log.warning(
                "outbox delivery skipped (%s: %s); the next tick retries", trouble.code, exc
            )


def stats_job(runtime: Runtime) -> None:
    """Roll up the days due and the days of cases changed since the last run (one process at
    a time: the others find the claim taken and skip)."""
    try:
        result = refresh_stats(
            runtime.engine, clock=runtime.now, tz=ZoneInfo(runtime.settings.timezone)
        )
    except Exception as exc:  # the next tick retries; a half-done refresh rewrites its days
        trouble = exc if isinstance(exc, GridgovError) else database_trouble(exc)
        if trouble is None:
            log.exception("stats rollup refresh failed")
        else:
            log.warning("stats rollup skipped (%s: %s); the next tick retries", trouble.code, exc)
    else:
        if result.days:
            log.info("stats rollup: %s", result.as_json())


def start_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    settings = runtime.settings
    jobs: list[tuple[str, Callable[..., None], float, list[Any]]] = [
        ("sla_sweep", sweep_job, settings.sweep_interval_seconds, [runtime]),
        (
            "outbox",
            outbox_job,
            settings.outbox_interval_seconds,
            [
                runtime,
                make_client(policy_from(settings)),
                Breaker(settings.outbox_retry_base_seconds),
            ],
        ),
        ("stats_rollup", stats_job, settings.stats_refresh_seconds, [runtime]),
    ]
    for job_id, func, seconds, args in jobs:
        # One run at a time per process; a late tick is merged into the next, not queued.
        scheduler.add_job(
            func, "interval", seconds=seconds, args=args, id=job_id, max_instances=1, coalesce=True
        )
    scheduler.start()
    return scheduler
