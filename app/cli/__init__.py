"""The `gridgov` command line: `main` and the commands that run the service; the groups of
commands live beside it (users, grids and taxonomy, calendar, audit)."""

from __future__ import annotations

import json
import sys

import click
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from app.cli.attachments import attachments
from app.cli.audit import audit
from app.cli.base import engine_from_settings, signing_settings
from app.cli.calendar import calendar
from app.cli.classifier import classifier
from app.cli.data import grids, taxonomy
from app.cli.open311 import open311
from app.cli.outbox import outbox, webhooks
from app.cli.stats import stats
from app.cli.users import users
from app.cli.warnings import warnings
from app.cli.wechat import wechat
from app.runtime import build_runtime
from core.clock import utcnow
from core.db import session_scope
from core.settings import Settings


@click.group()
def main() -> None:
    """gridgov: grid-based social governance (网格化社会治理)."""
    try:
        Settings()
    except ValidationError as exc:  # a clear line for the operator, not a traceback
        problems = [
            (f"GRIDGOV_{'_'.join(str(p) for p in e['loc']).upper()}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        ]
        raise click.ClickException("invalid configuration: " + "; ".join(problems)) from None


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Run the migrations to head."""
    from app.migrate import upgrade

    upgrade(engine_from_settings())
    click.echo("database at head")


@main.command("errors")
def errors() -> None:
    """Every error code as the README's Markdown table (code, HTTP status, message, meaning)."""
    from core.errors import error_table

    click.echo(error_table(), nl=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="seed the demo district into an empty database")
@click.option("--no-scheduler", is_flag=True, help="do not run the SLA sweep in this process")
@click.option("--workers", default=1, show_default=True, type=int, help="uvicorn worker processes")
def serve(host: str, port: int, demo: bool, no_scheduler: bool, workers: int) -> None:
    """Migrate, then serve the API (and the SLA sweep every minute)."""
    import os

    import uvicorn

    from app.migrate import upgrade
    from app.secret import InsecureSecretKey, demo_secret_key, is_unset
    from core.settings import get_settings

    if demo and is_unset(Settings()):
        try:
            key, path, created = demo_secret_key(Settings().database_url)
        except InsecureSecretKey as exc:
            click.echo(f"error: insecure_secret_key: {exc}", err=True)
            sys.exit(2)
        # The environment carries it to uvicorn's worker processes (`app_from_env`).
        os.environ["GRIDGOV_SECRET_KEY"] = key
        get_settings.cache_clear()
        click.echo(
            f"demo: GRIDGOV_SECRET_KEY is not set; {'generated' if created else 'using'} a "
            f"random key kept in {path} (mode 0600). Set your own key outside a demo."
        )
    signing_settings()
    engine = engine_from_settings()
    upgrade(engine)
    if demo:
        _seed_if_empty(engine)
    engine.dispose()
    os.environ["GRIDGOV_SCHEDULER"] = "0" if no_scheduler else "1"
    click.echo(f"gridgov on http://{host}:{port} (docs: /docs)")
    # Open console streams (SSE) never finish by themselves: stop waiting for them after 5 s.
    uvicorn.run(
        "app.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=5,
    )


def _seed_if_empty(engine: Engine) -> None:
    from app import demo as demo_data

    with session_scope(engine) as session:
        if demo_data.is_seeded(session):
            click.echo("demo: database already has data; not seeding")
            return
        result = demo_data.seed(session, now=utcnow())
    click.echo(
        f"demo: {result.areas} areas ({result.grids} micro-grids), "
        f"{result.departments} departments, {result.users} accounts; "
        f"password for every demo account: {demo_data.DEMO_PASSWORD}"
    )


@main.group("demo")
def demo_group() -> None:
    """Demo data."""


@demo_group.command("seed")
def demo_seed() -> None:
    """Seed the 禅城 demo district into an empty database."""
    from app.migrate import upgrade

    engine = engine_from_settings()
    upgrade(engine)
    _seed_if_empty(engine)


@main.command()
def sweep() -> None:
    """One SLA/escalation sweep now (for cron)."""
    from dispatch.tasks import run_sweep

    settings = signing_settings()  # the history rows it writes are keyed by the secret
    engine = engine_from_settings()
    runtime = build_runtime(settings, engine)
    totals = run_sweep(
        engine,
        now=runtime.now(),
        calendars=runtime.calendars,
        policy=runtime.policy,
        batch=settings.sweep_batch,
    )
    click.echo(json.dumps(totals))


for group in (
    users,
    grids,
    taxonomy,
    calendar,
    audit,
    webhooks,
    outbox,
    stats,
    attachments,
    classifier,
    warnings,
):
    main.add_command(group)
main.add_command(open311)
main.add_command(wechat)
