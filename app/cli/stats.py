"""`gridgov stats`: the 考核 rollup (the scheduler inside `serve` refreshes it too)."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import click
from sqlalchemy.engine import Engine

from app.cli.base import engine_from_settings, signing_settings
from core.clock import utcnow
from core.settings import Settings


@click.group()
def stats() -> None:
    """考核 statistics."""


@stats.command("refresh")
@click.option("--from", "first", default=None, metavar="DATE", help="first local day to recompute")
@click.option("--to", "last", default=None, metavar="DATE", help="last local day (≤ yesterday)")
@click.option(
    "--all",
    "rebuild",
    is_flag=True,
    help="first give handling times to cases resolved before they were kept, then recompute"
    " every day (a full rebuild)",
)
def stats_refresh(first: str | None, last: str | None, rebuild: bool) -> None:
    """Bring the rollup up to date now: the days not rolled yet up to yesterday and the days of
    cases changed since the last refresh, plus the local days --from..--to (YYYY-MM-DD) or,
    with --all, every day, after giving the cases resolved before migration 0010 their
    handling time (from their history, recorded in it: needs the signing key). Prints what it
    did as JSON on the last line; exit 1 when another refresh holds the rollup."""
    from dispatch.stats_rollup import refresh

    first_day, last_day = _day(first, "--from"), _day(last, "--to")
    if first_day is not None and last_day is not None and first_day > last_day:
        raise click.BadParameter(f"{first} is after --to {last}", param_hint="--from")
    settings = signing_settings() if rebuild else Settings()
    engine = engine_from_settings()
    backfilled = _backfill(settings, engine) if rebuild else None
    result = refresh(
        engine,
        clock=utcnow,
        tz=ZoneInfo(settings.timezone),
        first=first_day,
        last=last_day,
        rebuild=rebuild,
    )
    out = result.as_json()
    if backfilled is not None:
        out["handling_backfilled"] = backfilled
    click.echo(json.dumps(out))
    if result.skipped:
        click.echo("stats: another refresh is running; try again later", err=True)
        raise SystemExit(1)


def _backfill(settings: Settings, engine: Engine) -> int:
    """`stats_rollup.backfill_handling` with the service's calendars and audit key."""
    from dispatch.clock import CalendarProvider
    from dispatch.policy import Policy
    from dispatch.stats_rollup import backfill_handling

    calendars = CalendarProvider(
        engine, office_hours=settings.office_hours, timezone=settings.timezone
    )
    policy = Policy(audit_key=settings.secret_key)
    return backfill_handling(engine, calendars=calendars, policy=policy, clock=utcnow)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None
