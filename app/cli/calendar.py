"""`gridgov calendar`: working days, published schedules, overrides and checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from app.cli.base import engine_from_settings, fail
from core.clock import utcnow
from core.db import session_scope
from core.errors import GridgovError
from core.settings import Settings


@click.group()
def calendar() -> None:
    """Working days: published schedules (State Council notices), local overrides, checks."""


@calendar.command("set")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--workday/--holiday", required=True, help="what this date is")
@click.option("--note", default="", help="e.g. 国庆节 or 调休上班 (at most 100 characters)")
def calendar_set(day: Any, workday: bool, note: str) -> None:
    """Declare one date a working day or a rest day (source `override`: wins over any schedule)."""
    from core.errors import InvalidCalendar
    from dispatch import calendar_service

    if len(note) > 100:
        fail(InvalidCalendar(problems=["--note: longer than 100 characters"]))
    with session_scope(engine_from_settings()) as session:
        calendar_service.set_override(session, day=day.date(), is_workday=workday, note=note)
    click.echo(f"{day.date().isoformat()}: {'working day' if workday else 'rest day'}")


@calendar.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def calendar_import(path: Path) -> None:
    """Enter a year's published schedule from a JSON file (format: dispatch/calendar_notice.py).

    The file is checked whole first; on any error nothing is stored (exit 2). The year then
    counts as published: its rule holidays and warnings stop. Importing a year again replaces it.
    """
    from core.errors import InvalidCalendar
    from dispatch import calendar_service
    from dispatch.calendar_notice import parse_notice

    try:
        data = json.loads(path.read_text("utf-8"))
        notice = parse_notice(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(InvalidCalendar(problems=[f"not a UTF-8 JSON file: {exc}"]))
    except GridgovError as exc:
        fail(exc)
    with session_scope(engine_from_settings()) as session:
        result = calendar_service.import_notice(session, notice=notice, now=utcnow())
    for day in result.kept_overrides:
        click.echo(f"{day.isoformat()}: kept the local override (gridgov calendar set)", err=True)
    click.echo(
        json.dumps(
            {
                "year": result.year,
                "rest_days": result.rest_days,
                "workdays": result.workdays,
                "kept_overrides": [d.isoformat() for d in result.kept_overrides],
            }
        )
    )


@calendar.command("publish")
@click.argument("year", type=int)
@click.option("--note", default="", help="e.g. the notice's number")
def calendar_publish(year: int, note: str) -> None:
    """Declare YEAR's schedule complete as entered day by day with `calendar set`."""
    from dispatch import calendar_service

    try:
        with session_scope(engine_from_settings()) as session:
            calendar_service.publish_year(session, year=year, note=note[:200], now=utcnow())
    except GridgovError as exc:
        fail(exc)
    click.echo(f"{year}: published schedule entered; no more rule holidays")


@calendar.command("list")
def calendar_list() -> None:
    """Print the stored dates (overrides and imported schedules) as JSON lines."""
    from dispatch import calendar_service

    with session_scope(engine_from_settings()) as session:
        for row in calendar_service.entries(session):
            click.echo(
                json.dumps(
                    {
                        "day": row.day.isoformat(),
                        "is_workday": row.is_workday,
                        "source": row.source,
                        "note": row.note,
                    },
                    ensure_ascii=False,
                )
            )


@calendar.command("check")
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="check as of this date (default: today)",
)
@click.option(
    "--lookahead-days",
    type=click.IntRange(0, 366),
    default=60,
    show_default=True,
    help="next year counts as in use from this many days before it starts",
)
def calendar_check(on: Any, lookahead_days: int) -> None:
    """Exit 1 naming the years in use that have no published holiday schedule.

    Years in use: this year, next year within --lookahead-days of it, and every year in which
    an open case's deadline falls.
    """
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from dispatch import calendar_service
    from dispatch.calendar import parse_office_hours

    settings = Settings()
    tz = ZoneInfo(settings.timezone)
    now = utcnow() if on is None else datetime.combine(on.date(), time(12), tz)
    with session_scope(engine_from_settings()) as session:
        calendar = calendar_service.load_schedule(session).calendar(
            parse_office_hours(settings.office_hours), tz
        )
        years, missing = calendar_service.unpublished_years_in_use(
            session, calendar=calendar, now=now, lookahead_days=lookahead_days
        )
    for year in missing:
        click.echo(
            f"{year}: no published holiday schedule; its statutory holidays are computed by rule "
            "and 调休 working weekends are unknown: import the State Council notice with "
            "`gridgov calendar import FILE`"
        )
    if missing:
        sys.exit(1)
    click.echo("published holiday schedules for " + ", ".join(str(y) for y in years))
