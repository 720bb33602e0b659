"""`gridgov open311 keys`: the api keys civic apps file Open311 service requests with."""

from __future__ import annotations

import json

import click

from app.cli.base import engine_from_settings, fail
from core.db import session_scope
from core.errors import GridgovError


@click.group()
def open311() -> None:
    """Open311 GeoReport v2 (/open311/v2): civic apps and their api keys."""


@open311.group()
def keys() -> None:
    """Api keys, one or more per civic app (shown once, kept hashed)."""


@keys.command("add")
@click.option("--name", required=True, help="the civic app (1-32 letters, digits, . - _)")
def keys_add(name: str) -> None:
    """Issue a key for an app; prints it as the last line (it cannot be shown again)."""
    from channels.open311 import keys as service
    from core.clock import utcnow

    try:
        with session_scope(engine_from_settings()) as session:
            issued = service.issue(session, name=name, now=utcnow())
    except GridgovError as exc:
        fail(exc)
    click.echo(f"key {issued.id} for {issued.name}; keep it now, it is shown only once:")
    click.echo(issued.api_key)


@keys.command("list")
def keys_list() -> None:
    """Every key as JSON: id, app name, first characters, issued and revoked instants."""
    from channels.open311 import keys as service

    with session_scope(engine_from_settings()) as session:
        items = [
            {
                "id": row.id,
                "name": row.name,
                "key_prefix": row.key_prefix,
                "created_at": row.created_at.isoformat(),
                "revoked_at": None if row.revoked_at is None else row.revoked_at.isoformat(),
                "active": row.revoked_at is None,
            }
            for row in service.all_keys(session)
        ]
    click.echo(json.dumps(items, ensure_ascii=False, indent=2))


@keys.command("revoke")
@click.argument("key_id", type=int)
def keys_revoke(key_id: int) -> None:
    """Refuse a key from now on (its app's earlier requests stay)."""
    from channels.open311 import keys as service
    from core.clock import utcnow

    try:
        with session_scope(engine_from_settings()) as session:
            service.revoke(session, key_id, now=utcnow())
    except GridgovError as exc:
        fail(exc)
    click.echo(f"revoked {key_id}")
