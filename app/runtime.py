"""What a running process holds: settings, engine, caches of grids/catalogue/calendar, the clock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.contention import Turns
from app.metrics import Metrics
from app.revocation import AuthWatch
from app.stream import ChangeHub
from channels.wechat import api as wechat_api
from channels.wechat import push as wechat_push
from channels.wechat.api import WechatApi
from core.clock import Clock, utcnow
from core.revisioned import RevisionedCache
from core.security import Actor
from core.settings import Settings
from dispatch.duplicates import DuplicateRules, parse_rules
from dispatch.service import CalendarProvider, Policy
from events.service import IntakeContext
from grid.index import GridIndex
from grid.service import grid_resolver
from notify import outbox
from taxonomy.revisions import RevisionCatalogues
from taxonomy.service import Taxonomy, taxonomy_holder

log = logging.getLogger("gridgov.runtime")

# Every process of the service writes the outbox with each case change (notify/outbox.py).
outbox.install()
# ...and routes and sends the residents' WeChat pushes through it (channels/wechat/push.py).
wechat_push.install()


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
    # 并单 candidates' radius and window per category (defaults + GRIDGOV_DUPLICATE_RULES).
    duplicates: DuplicateRules = field(default_factory=DuplicateRules)
    # The WeChat API (access token shared through the database); None: not configured.
    wechat: WechatApi | None = None
    # Live screens: this process's reader of the change feed (app/stream.py).
    changes: ChangeHub | None = None
    # Simplified grid outlines as encoded JSON, with the grid index they were made under
    # (app/routes/grids.py): (level, metres, parent) → (index, body, gzipped body).
    outlines: dict[tuple[str, float, str | None], tuple[object, bytes, bytes]] = field(
        default_factory=dict
    )

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
            duplicates=self.duplicates,
        )


def build_runtime(settings: Settings, engine: Engine, *, clock: Clock = utcnow) -> Runtime:
    wechat = wechat_api.api_from(settings, engine, clock=clock)
    pusher = (
        wechat_push.Pusher(
            api=wechat, template_id=settings.wechat_template_id, tz=ZoneInfo(settings.timezone)
        )
        if wechat is not None and settings.wechat_template_id
        else None
    )
    wechat_push.configure(engine, pusher)
    if pusher is not None:
        try:
            wechat_push.ensure_subscription(engine, now=clock())
        except SQLAlchemyError as exc:  # database not there yet: the next process start makes it
            log.warning("the WeChat push subscription is not there yet: %s", exc)
    actors = ActorCache(settings.auth_cache_seconds)
    outbox.configure(engine, refresh_seconds=settings.grid_refresh_seconds)
    taxonomy = taxonomy_holder(engine, refresh_seconds=settings.grid_refresh_seconds)
    catalogues = RevisionCatalogues(engine, current=lambda: taxonomy.get().catalogue)
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
            escalation=lambda revision: catalogues.get(revision).escalation,
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
        duplicates=DuplicateRules(
            parse_rules(settings.duplicate_rules), settings.duplicate_max_candidates
        ),
        wechat=wechat,
        changes=ChangeHub(engine, poll_seconds=settings.stream_poll_seconds),
    )
