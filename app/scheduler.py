"""APScheduler inside `gridgov serve`: the SLA sweep every minute, the outbox delivery worker
every few seconds and the 考核 rollup refresh every few minutes (several processes may run
them all)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from apscheduler.schedulers.background import BackgroundScheduler

from app.runtime import Runtime
from channels.wechat import media as wechat_media
from channels.wechat import service as wechat_service
from core.db import database_trouble, session_scope
from core.errors import GridgovError
from dispatch import learning
from dispatch.stats_rollup import refresh as refresh_stats
from dispatch.tasks import run_sweep
from media import service as media_service
from notify.delivery import Breaker, drain, make_client
from notify.webhooks import policy_from
from surveillance import runner

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


def attachments_job(runtime: Runtime) -> None:
    """Remove uploads never used by a case, and unused files (one process per interval: the
    others find the run claimed and skip)."""
    settings = runtime.settings
    try:
        result = media_service.prune(
            runtime.engine,
            now=runtime.now(),
            older_than=timedelta(hours=settings.attachment_orphan_hours),
            storage=media_service.storage_of(settings),
            every=timedelta(seconds=settings.attachment_prune_interval_seconds),
        )
    except Exception as exc:  # the next tick retries
        trouble = exc if isinstance(exc, GridgovError) else database_trouble(exc)
        if trouble is None:
            log.exception("attachment sweep failed")
        else:
            log.warning(
                "attachment sweep skipped (%s: %s); the next tick retries", trouble.code, exc
            )
    else:
        if result.rows or result.files:
            log.info("attachment sweep: %s", result.as_json())


def classifier_job(runtime: Runtime) -> None:
    """Retrain the classifier when enough corrections came in (one process: the lease)."""
    settings = runtime.settings
    try:
        result = learning.retrain_if_due(
            runtime.engine,
            runtime.taxonomy.get().catalogue,
            now=runtime.now(),
            after=settings.classifier_retrain_after,
        )
    except Exception as exc:  # the next tick retries; the lease expires
        trouble = exc if isinstance(exc, GridgovError) else database_trouble(exc)
        if trouble is None:
            log.exception("classifier retraining failed")
        else:
            log.warning("classifier retraining skipped (%s); the next tick retries", trouble.code)
    else:
        if result.trained:
            log.info("classifier retrained: model %s", result.trained["model_version"])


def warning_scan(
    runtime: Runtime, *, kind: str, now: datetime, slot: str | None = None
) -> dict[str, Any] | None:
    """One early-warning scan with this process's grids, catalogue, calendar and settings
    (`surveillance.runner.run_scan`); the scheduler's and `gridgov warnings scan`'s."""
    settings = runtime.settings
    return runner.run_scan(
        runtime.engine,
        kind=kind,
        now=now,
        grids=runtime.grids.get(),
        catalogue=runtime.taxonomy.get().catalogue,
        settings=runner.scan_settings(settings),
        tz=ZoneInfo(settings.timezone),
        is_workday=runtime.calendars.get().is_workday,
        slot=slot,
    )


def warnings_job(runtime: Runtime) -> None:
    """The early-warning scans that are due (the hour's spike check, the day's space-time scan
    from GRIDGOV_WARNING_SCAN_HOUR), each claimed: however many processes run this, one runs
    each slot."""
    settings = runtime.settings
    now = runtime.now()
    for kind, slot in runner.due_slots(
        now, ZoneInfo(settings.timezone), settings.warning_scan_hour
    ):
        try:
            summary = warning_scan(runtime, kind=kind, now=now, slot=slot)
        except Exception as exc:  # the claim was let go: the next tick tries the slot again
            trouble = exc if isinstance(exc, GridgovError) else database_trouble(exc)
            if trouble is None:
                log.exception("early-warning %s scan failed", kind)
            else:
                log.warning("early-warning %s scan skipped (%s)", kind, trouble.code)
            continue
        if summary is not None and (summary["raised"] or summary["updated"]):
            log.info(
                "early warning (%s): raised %s, updated %s",
                kind,
                summary["raised"],
                summary["updated"],
            )


def wechat_media_job(runtime: Runtime) -> None:
    """Fetch the residents' photos that are due (claimed rows: several processes never fetch
    one twice; channels/wechat/media.py)."""
    api = runtime.wechat
    if api is None:
        return
    settings = runtime.settings
    try:
        totals = wechat_media.drain(
            runtime.engine,
            api=api,
            storage=media_service.storage_of(settings),
            limits=media_service.limits_of(settings),
            clock=runtime.now,
            policy=wechat_media.MediaPolicy(
                retry_base_seconds=settings.wechat_media_retry_base_seconds
            ),
        )
    except Exception as exc:  # the next tick retries; the claims of this one expire
        trouble = exc if isinstance(exc, GridgovError) else database_trouble(exc)
        if trouble is None:
            log.exception("wechat media fetch failed")
        else:
            log.warning("wechat media skipped (%s: %s); the next tick retries", trouble.code, exc)
    else:
        if totals["claimed"]:
            log.info("wechat media: %s", totals)


def wechat_messages_job(runtime: Runtime) -> None:
    """Forget WeChat messages handled over a day ago (their dedupe keys and stored replies)."""
    try:
        with session_scope(runtime.engine) as session:
            removed = wechat_service.prune_messages(session, now=runtime.now())
    except Exception as exc:  # the next tick retries
        trouble = exc if isinstance(exc, GridgovError) else database_trouble(exc)
        if trouble is None:
            log.exception("wechat message pruning failed")
        else:
            log.warning("wechat message pruning skipped (%s); the next tick retries", trouble.code)
    else:
        if removed:
            log.info("wechat messages pruned: %d", removed)


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
        ("attachments", attachments_job, settings.attachment_prune_interval_seconds, [runtime]),
        ("classifier", classifier_job, settings.classifier_retrain_check_seconds, [runtime]),
    ]
    if settings.warning_scan_enabled:
        jobs.append(("warnings", warnings_job, 300.0, [runtime]))
    if runtime.wechat is not None:
        jobs.append(
            ("wechat_media", wechat_media_job, settings.wechat_media_interval_seconds, [runtime])
        )
    if settings.wechat_token:
        jobs.append(("wechat_messages", wechat_messages_job, 3600.0, [runtime]))
    for job_id, func, seconds, args in jobs:
        # One run at a time per process; a late tick is merged into the next, not queued.
        scheduler.add_job(
            func, "interval", seconds=seconds, args=args, id=job_id, max_instances=1, coalesce=True
        )
    scheduler.start()
    return scheduler
