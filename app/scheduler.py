"""APScheduler inside `gridgov serve`: the SLA sweep every minute and the outbox delivery worker
every few seconds (several processes may run both)."""

from __future__ import annotations

import logging
import time

import httpx
from apscheduler.schedulers.background import BackgroundScheduler

from app.runtime import Runtime
from core.db import database_trouble
from core.errors import GridgovError
from dispatch.tasks import run_sweep
from notify.delivery import drain, make_client
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


def outbox_job(runtime: Runtime, client: httpx.Client) -> None:
    """Deliver what is due (the sends happen outside any transaction: notify/delivery.py)."""
    try:
        drain(
            runtime.engine,
            clock=runtime.now,
            policy=policy_from(runtime.settings),
            catalogue=lambda: runtime.taxonomy.get().catalogue,
            client=client,
        )
    except Exception as exc:  # the next tick retries; claims of this one expire
        trouble = exc if isinstance(exc, GridgovError) else database_trouble(exc)
        if trouble is None:
            log.exception("outbox delivery failed")
        else:
            log.warning(
                "outbox delivery skipped (%s: %s); the next tick retries", trouble.code, exc
            )


def start_scheduler(runtime: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        sweep_job,
        "interval",
        seconds=runtime.settings.sweep_interval_seconds,
        args=[runtime],
        id="sla_sweep",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        outbox_job,
        "interval",
        seconds=runtime.settings.outbox_interval_seconds,
        args=[runtime, make_client(policy_from(runtime.settings))],
        id="outbox",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler
