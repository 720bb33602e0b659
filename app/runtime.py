"""What a running process holds: settings, engine, caches of grids/catalogue/calendar, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from app.settings import Settings
from dispatch.service import CalendarProvider, Policy
from events.service import IntakeContext
from grid.service import GridResolver
from taxonomy.service import TaxonomyHolder


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    grids: GridResolver
    taxonomy: TaxonomyHolder
    calendars: CalendarProvider
    policy: Policy
    clock: Callable[[], datetime] = field(default=utcnow)

    def now(self) -> datetime:
        return self.clock()

    def intake_context(self) -> IntakeContext:
        return IntakeContext(
            grids=self.grids.index(),
            taxonomy=self.taxonomy.get(),
            calendars=self.calendars,
            policy=self.policy,
            tolerance_m=self.settings.grid_tolerance_m,
            max_description_chars=self.settings.max_description_chars,
        )


def build_runtime(
    settings: Settings, engine: Engine, *, clock: Callable[[], datetime] = utcnow
) -> Runtime:
    return Runtime(
        settings=settings,
        engine=engine,
        grids=GridResolver(engine, refresh_seconds=settings.grid_refresh_seconds),
        taxonomy=TaxonomyHolder(engine, refresh_seconds=settings.grid_refresh_seconds),
        calendars=CalendarProvider(
            engine, office_hours=settings.office_hours, timezone=settings.timezone
        ),
        policy=Policy(
            audit_key=settings.secret_key,
            warn_fraction=settings.warn_fraction,
            escalate_every_fraction=settings.escalate_every_fraction,
        ),
        clock=clock,
    )
