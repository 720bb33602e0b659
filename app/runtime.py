"""What a running process holds: settings, engine, caches of grids/catalogue/calendar, the clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from app.contention import Turns
from app.metrics import Metrics
from app.revocation import AuthWatch
from core.clock import Clock, utcnow
from core.revisioned import RevisionedCache
from core.security import Actor
from core.settings import Settings
from dispatch.service import CalendarProvider, Policy
from events.service import IntakeContext
from grid.index import GridIndex
from grid.service import grid_resolver
from notify import outbox
from taxonomy.service import Taxonomy, taxonomy_holder

# Every process of the service writes the outbox with each case change (notify/outbox.py).
outbox.install()


class ActorCache:
    """Accounts by (user id, token version) for a few seconds, so intake saves two queries.

    Every revocation through gridgov empties it in every process (see `AuthWatch`); `ttl`
    only bounds how long an account edited behind gridgov's back is trusted.
    """

    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, int], tuple[float, Actor]] = {}
        # Moved by `clear`: an account loaded before a clear is not put back after it.
        self._generation = 0

    def peek(self, user_id: int, token_version: int) -> Actor | None:
        with self._lock:
            hit = self._entries.get((user_id, token_version))
        if hit is not None and self._monotonic() - hit[0] < self._ttl:
            return hit[1]
        return None

    def generation(self) -> int:
        return self._generation

    def put(
        self, user_id: int, token_version: int, actor: Actor, *, generation: int | None = None
    ) -> None:
        """Keep `actor`, unless the cache was cleared since `generation` (read before loading)."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            if len(self._entries) > 50_000:
                self._entries.clear()
            self._entries[(user_id, token_version)] = (self._monotonic(), actor)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    grids: RevisionedCache[GridIndex]
    taxonomy: RevisionedCache[Taxonomy]
    calendars: CalendarProvider
    policy: Policy
    actors: ActorCache
    auth: AuthWatch
    # This process's Prometheus instruments, in a registry of their own (app/metrics.py).
    metrics: Metrics
    clock: Clock = field(default=utcnow)
    # Actions on one case take turns here, in the event loop (see app/contention.py).
    case_turns: Turns = field(default_factory=Turns)

    def now(self) -> datetime:
        return self.clock()

    def intake_context(self) -> IntakeContext:
        return IntakeContext(
            grids=self.grids.get(),
            taxonomy=self.taxonomy.get(),
            calendars=self.calendars,
            policy=self.policy,
            tolerance_m=self.settings.grid_tolerance_m,
            max_description_chars=self.settings.max_description_chars,
        )


def build_runtime(settings: Settings, engine: Engine, *, clock: Clock = utcnow) -> Runtime:
    actors = ActorCache(settings.auth_cache_seconds)
    outbox.configure(engine, refresh_seconds=settings.grid_refresh_seconds)
    taxonomy = taxonomy_holder(engine, refresh_seconds=settings.grid_refresh_seconds)
    return Runtime(
        settings=settings,
        engine=engine,
        grids=grid_resolver(engine, refresh_seconds=settings.grid_refresh_seconds),
        taxonomy=taxonomy,
        calendars=CalendarProvider(
            engine, office_hours=settings.office_hours, timezone=settings.timezone
        ),
        policy=Policy(
            audit_key=settings.secret_key,
            warn_fraction=settings.warn_fraction,
            escalation=lambda: taxonomy.get().catalogue.escalation,
            max_extensions=settings.max_extensions,
            reopen_after_visit_days=settings.reopen_after_visit_days,
            accept_limit_hours=settings.accept_limit_working_hours,
            verify_limit_hours=settings.verify_limit_working_hours,
        ),
        actors=actors,
        auth=AuthWatch(
            engine,
            refresh_seconds=settings.auth_refresh_seconds,
            on_change=actors.clear,
            clock=clock,
        ),
        metrics=Metrics(engine, clock),
        clock=clock,
    )
