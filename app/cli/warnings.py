"""`gridgov warnings`: early warning (预警) scans by hand or from cron."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click

from app.cli.base import engine_from_settings
from core.clock import utcnow
from core.settings import Settings


@click.group()
def warnings() -> None:
    """Early warning: space-time clusters and per-grid spikes."""


@warnings.command("scan")
@click.option(
    "--at",
    "at",
    default=None,
    metavar="DATETIME",
    help="scan as of this instant (ISO 8601; without an offset: local time); default now",
)
@click.option(
    "--spikes",
    is_flag=True,
    help="the hourly spike check instead of the daily space-time scan",
)
def warnings_scan(at: str | None, spikes: bool) -> None:
    """Run a scan now (whatever the scheduler did today) and print the warnings it raised or
    updated as JSON (a list) on the last line; a summary goes first."""
    from app.migrate import upgrade
    from app.runtime import build_runtime
    from app.scheduler import warning_scan
    from surveillance import runner

    settings = Settings()
    tz = ZoneInfo(settings.timezone)
    now = utcnow()
    if at is not None:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            raise click.BadParameter(
                f"{at!r} is not an ISO 8601 datetime", param_hint="--at"
            ) from None
        now = (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(UTC)
    engine = engine_from_settings()
    upgrade(engine)
    runtime = build_runtime(settings, engine=engine)
    kind = runner.SPIKE_CHECK if spikes else runner.CLUSTER_SCAN
    summary = warning_scan(runtime, kind=kind, now=now)
    assert summary is not None  # no slot: never skipped
    warnings_out = [w for w in summary.pop("warnings") if w["outcome"] != "seen"]
    click.echo(json.dumps(summary, ensure_ascii=False), err=True)
    click.echo(json.dumps(warnings_out, ensure_ascii=False))
