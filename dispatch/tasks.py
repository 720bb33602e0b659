"""Scheduled work: the SLA sweep, in batches, each batch its own transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Engine

from core.db import session_scope
from core.heap import collector_paused
from core.security import SYSTEM_ACTOR
from dispatch import service as dispatch_service

log = logging.getLogger("gridgov.sweep")


def run_sweep(
    engine: Engine,
    *,
    now: datetime,
    calendars: dispatch_service.CalendarProvider,
    policy: dispatch_service.Policy,
    batch: int = 1000,
    max_batches: int = 1000,
) -> dict[str, int]:
    """Sweep every case whose next SLA instant has come; safe to run from several processes."""
    totals = dict.fromkeys(dispatch_service.SWEEP_COUNTS, 0)
    for _ in range(max_batches):
        # The collector paused for the batch: see core.heap.
        with collector_paused(), session_scope(engine) as session:
            counts = dispatch_service.sweep(
                session,
                now=now,
                calendars=calendars,
                policy=policy,
                actor=SYSTEM_ACTOR,
                batch=batch,
            )
        for key, value in counts.items():
            totals[key] += value
        if counts["checked"] < batch:
            break
    if totals["checked"]:
        log.info("sweep at %s: %s", now.isoformat(), totals)
    return totals
