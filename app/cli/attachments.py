"""`gridgov attachments`: the orphan sweep (the scheduler inside `serve` runs it too)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import click

from app.cli.base import engine_from_settings
from core.clock import utcnow
from core.settings import Settings


@click.group()
def attachments() -> None:
    """Uploaded photos (GRIDGOV_ATTACHMENT_DIR)."""


@attachments.command("prune")
@click.option(
    "--at",
    "at",
    default=None,
    metavar="DATETIME",
    help="count ages from this instant (ISO 8601 with offset) instead of now",
)
def attachments_prune(at: str | None) -> None:
    """Remove uploads no case used within GRIDGOV_ATTACHMENT_ORPHAN_HOURS, and the files no
    upload uses. Prints {"rows", "files"} as JSON on the last line."""
    from media import service as media_service

    now = utcnow() if at is None else _instant(at)
    settings = Settings()
    result = media_service.prune(
        engine_from_settings(),
        now=now,
        older_than=timedelta(hours=settings.attachment_orphan_hours),
        storage=media_service.storage_of(settings),
    )
    click.echo(json.dumps(result.as_json()))


def _instant(raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise click.BadParameter("an ISO 8601 date and time", param_hint="--at") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a timezone offset (e.g. +08:00)", param_hint="--at")
    return moment
