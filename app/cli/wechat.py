"""`gridgov wechat`: residents' photos queued from the official account (the scheduler inside
`serve` fetches them too)."""

from __future__ import annotations

import json

import click

from app.cli.base import engine_from_settings
from core.clock import utcnow
from core.db import session_scope
from core.settings import Settings


@click.group()
def wechat() -> None:
    """The WeChat official account (GRIDGOV_WECHAT_*)."""


@wechat.command("fetch-media")
def fetch_media() -> None:
    """Download the residents' photos that are due now (with the shared access token), store
    them as attachments and link them to their cases. Prints {"claimed", "stored", "retrying",
    "failed"} as JSON on the last line; exit 2 when WeChat is not configured."""
    from channels.wechat import media as wechat_media
    from channels.wechat.api import api_from
    from media import service as media_service

    settings = Settings()
    engine = engine_from_settings()
    api = api_from(settings, engine, clock=utcnow)
    if api is None:
        click.echo(
            "error: wechat_not_configured: set GRIDGOV_WECHAT_APPID and GRIDGOV_WECHAT_APP_SECRET",
            err=True,
        )
        raise SystemExit(2)
    with api.client:
        totals = wechat_media.drain(
            engine,
            api=api,
            storage=media_service.storage_of(settings),
            limits=media_service.limits_of(settings),
            clock=utcnow,
            policy=wechat_media.MediaPolicy(
                retry_base_seconds=settings.wechat_media_retry_base_seconds
            ),
        )
    click.echo(json.dumps(totals))


@wechat.command("media")
@click.option("--failed", is_flag=True, help="only the downloads that failed for good")
def media_list(failed: bool) -> None:
    """The download queue, newest first, one JSON object a line (failed ones say why)."""
    from channels.wechat import media as wechat_media

    with session_scope(engine_from_settings()) as session:
        for row in wechat_media.queue_state(session, failed_only=failed):
            click.echo(json.dumps(row, ensure_ascii=False))
