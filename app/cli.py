"""The `gridgov` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine
from sqlmodel import col

from app.db import make_engine, session_scope
from app.errors import GridgovError
from app.models import Role
from app.runtime import build_runtime, utcnow
from app.settings import Settings


def _engine() -> Engine:
    return make_engine(Settings().database_url)


def _fail(exc: GridgovError) -> None:
    click.echo(f"error: {exc.code}: {exc.detail}", err=True)
    sys.exit(2)


@click.group()
def main() -> None:
    """gridgov: grid-based social governance (网格化社会治理)."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Run the migrations to head."""
    from app.migrate import upgrade

    upgrade(_engine())
    click.echo("database at head")


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

    engine = _engine()
    upgrade(engine)
    if demo:
        _seed_if_empty(engine)
    engine.dispose()
    os.environ["GRIDGOV_SCHEDULER"] = "0" if no_scheduler else "1"
    click.echo(f"gridgov on http://{host}:{port} (docs: /docs)")
    uvicorn.run("app.main:app_from_env", factory=True, host=host, port=port, workers=workers)


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

    engine = _engine()
    upgrade(engine)
    _seed_if_empty(engine)


@main.group()
def users() -> None:
    """Accounts."""


@users.command("add")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--username", required=True)
@click.option("--password", default=None, help="prompted for when omitted")
@click.option("--grid", "grids", multiple=True, help="grid code (grid_worker; repeatable)")
@click.option("--department", default=None, help="department code (department role)")
@click.option("--name", "display_name", default="", help="display name")
@click.option("--print-token", is_flag=True, help="print a bearer token as the last line")
def users_add(
    role: str,
    username: str,
    password: str | None,
    grids: tuple[str, ...],
    department: str | None,
    display_name: str,
    print_token: bool,
) -> None:
    """Create an account."""
    from app.migrate import upgrade
    from app.security import issue_token
    from app.users import create_user

    if password is None:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    settings = Settings()
    engine = _engine()
    upgrade(engine)
    now = utcnow()
    try:
        with session_scope(engine) as session:
            user = create_user(
                session,
                username=username,
                password=password,
                role=Role(role),
                grid_codes=grids,
                department_code=department,
                display_name=display_name,
                now=now,
            )
            user_id, version = user.id, user.token_version
    except GridgovError as exc:
        _fail(exc)
        return
    click.echo(f"created {role} {username} (id {user_id})")
    if print_token:
        assert user_id is not None
        click.echo(
            issue_token(
                secret=settings.secret_key,
                user_id=user_id,
                token_version=version,
                now=now,
                ttl=settings.token_ttl_seconds,
            )
        )


@main.group()
def grids() -> None:
    """Grid boundaries (GeoJSON)."""


@grids.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--crs", default="wgs84", show_default=True, help="wgs84, gcj02 or EPSG:4326/4490")
def grids_import(file: Path, crs: str) -> None:
    """Insert or update areas from a FeatureCollection with `code` and `name` properties."""
    from app.migrate import upgrade
    from grid import service as grid_service
    from grid.coords import parse_crs
    from grid.geojson import read_features

    try:
        parsed = parse_crs(crs)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    try:
        features = read_features(file.read_text("utf-8"), crs=parsed)
    except ValueError as exc:
        click.echo(f"error: invalid_geojson: {exc}", err=True)
        sys.exit(2)
    items = []
    for i, (props, geom) in enumerate(features):
        code = str(props.get("code") or "")
        name = str(props.get("name") or code)
        if not code:
            click.echo(f"error: invalid_area: feature {i} has no `code` property", err=True)
            sys.exit(2)
        items.append(grid_service.AreaIn(code=code, name=name, geometry=geom))
    engine = _engine()
    upgrade(engine)
    try:
        with session_scope(engine) as session:
            counts = grid_service.upsert_areas(session, items, now=utcnow())
    except GridgovError as exc:
        _fail(exc)
        return
    click.echo(json.dumps(counts))


@grids.command("export")
def grids_export() -> None:
    """Print every active area as a GeoJSON FeatureCollection (WGS-84)."""
    from grid import service as grid_service

    with session_scope(_engine()) as session:
        click.echo(json.dumps(grid_service.export_feature_collection(session), ensure_ascii=False))


@main.group()
def taxonomy() -> None:
    """The category catalogue."""


@taxonomy.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def taxonomy_import(file: Path) -> None:
    """Validate and install a catalogue (JSON) as the new revision."""
    from sqlalchemy import select

    from app.migrate import upgrade
    from dispatch.models import Department
    from taxonomy import service as taxonomy_service

    try:
        data = json.loads(file.read_text("utf-8"))
    except (ValueError, UnicodeError) as exc:
        click.echo(f"error: invalid_catalogue: not JSON: {exc}", err=True)
        sys.exit(2)
    if not isinstance(data, dict):
        click.echo("error: invalid_catalogue: expected a JSON object", err=True)
        sys.exit(2)
    engine = _engine()
    upgrade(engine)
    try:
        with session_scope(engine) as session:
            known = set(session.execute(select(col(Department.code))).scalars())
            cat = taxonomy_service.import_catalogue(
                session, data, now=utcnow(), known_departments=known, note=file.name
            )
    except GridgovError as exc:
        _fail(exc)
        return
    subs = sum(len(c.subcategories) for c in cat.categories)
    click.echo(f"catalogue installed: {len(cat.categories)} categories, {subs} subcategories")


@taxonomy.command("export")
def taxonomy_export() -> None:
    """Print the catalogue in force as JSON."""
    from taxonomy import service as taxonomy_service

    with session_scope(_engine()) as session:
        tax = taxonomy_service.load_taxonomy(session)
    click.echo(json.dumps(tax.catalogue.model_dump(mode="json"), ensure_ascii=False, indent=1))


@main.command()
def sweep() -> None:
    """One SLA/escalation sweep now (for cron)."""
    from dispatch.tasks import run_sweep

    settings = Settings()
    engine = _engine()
    runtime = build_runtime(settings, engine)
    totals = run_sweep(
        engine,
        now=runtime.now(),
        calendars=runtime.calendars,
        policy=runtime.policy,
        batch=settings.sweep_batch,
    )
    click.echo(json.dumps(totals))


@main.group()
def calendar() -> None:
    """Working-day overrides (a year's State Council notice, local changes)."""


@calendar.command("set")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--workday/--holiday", required=True, help="what this date is")
@click.option("--note", default="", help="e.g. 国庆节 or 调休上班")
def calendar_set(day: Any, workday: bool, note: str) -> None:
    """Declare one date a working day or a rest day (overrides the packaged calendar)."""
    from dispatch import service as dispatch_service

    engine = _engine()
    with session_scope(engine) as session:
        dispatch_service.set_calendar_override(
            session, day=day.date(), is_workday=workday, note=note
        )
    click.echo(f"{day.date().isoformat()}: {'working day' if workday else 'rest day'}")


@calendar.command("list")
def calendar_list() -> None:
    """Print the overrides as JSON lines."""
    from dispatch import service as dispatch_service

    with session_scope(_engine()) as session:
        for row in dispatch_service.calendar_overrides(session):
            click.echo(
                json.dumps(
                    {"day": row.day.isoformat(), "is_workday": row.is_workday, "note": row.note},
                    ensure_ascii=False,
                )
            )


@main.group()
def audit() -> None:
    """The tamper-evident case log."""


@audit.command("verify")
def audit_verify() -> None:
    """Check every case's history chain; exit 1 when anything was altered."""
    from dispatch import service as dispatch_service

    settings = Settings()
    with session_scope(_engine()) as session:
        problems, cases = dispatch_service.verify_audit(session, key=settings.secret_key)
    for p in problems:
        seq = "-" if p.seq is None else p.seq
        click.echo(f"case {p.case_id} row {seq}: {p.problem}")
    if problems:
        click.echo(f"audit: {len(problems)} problem(s) in {cases} cases", err=True)
        sys.exit(1)
    click.echo(f"audit: {cases} cases, every chain intact")
