"""The `gridgov` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine
from sqlmodel import col

from app.runtime import build_runtime
from core.clock import utcnow
from core.db import make_engine, session_scope
from core.errors import GridgovError, ImportRefused
from core.models import Role
from core.settings import Settings


def _engine() -> Engine:
    return make_engine(Settings().database_url)


def _fail(exc: GridgovError) -> None:
    click.echo(f"error: {exc.code}: {exc.detail}", err=True)
    sys.exit(2)


def _signing_settings() -> Settings:
    """Settings for a command that signs (tokens, the audit chain): exit 2 on a weak key."""
    from app.secret import InsecureSecretKey, require_secret_key

    settings = Settings()
    try:
        require_secret_key(settings)
    except InsecureSecretKey as exc:
        click.echo(f"error: insecure_secret_key: {exc}", err=True)
        sys.exit(2)
    return settings


def _fail_import(exc: ImportRefused) -> None:
    """Every problem of a refused import file, one a line."""
    click.echo(f"error: {exc.code}: {exc.summary}", err=True)
    for problem in exc.problems:
        click.echo(f"- {problem}", err=True)
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
    _signing_settings()
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
    from app.users import create_user
    from core.security import issue_token

    settings = _signing_settings() if print_token else Settings()
    if password is None:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
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


def _account_change(username: str, change: str) -> None:
    from app.users import revoke_tokens, set_active

    engine = _engine()
    try:
        with session_scope(engine) as session:
            if change == "revoke-tokens":
                revoke_tokens(session, username=username, now=utcnow())
            else:
                set_active(session, username=username, active=change == "enable", now=utcnow())
    except GridgovError as exc:
        _fail(exc)
        return


@users.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Refuse the account and every token it holds, in every process within a second."""
    _account_change(username, "disable")
    click.echo(f"disabled {username}; its tokens are revoked")


@users.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Allow a disabled account to sign in again (its old tokens stay revoked)."""
    _account_change(username, "enable")
    click.echo(f"enabled {username}")


@users.command("revoke-tokens")
@click.argument("username")
def users_revoke_tokens(username: str) -> None:
    """Sign the account out everywhere: every token issued so far stops working."""
    _account_change(username, "revoke-tokens")
    click.echo(f"revoked every token of {username}")


@main.group()
def grids() -> None:
    """Grid boundaries (GeoJSON)."""


@grids.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--crs", default="wgs84", show_default=True, help="wgs84, gcj02 or EPSG:4326/4490")
def grids_import(file: Path, crs: str) -> None:
    """Insert or update areas from a FeatureCollection with `code` and `name` properties.

    The whole file is checked first against the stored areas (codes, geometry, orphans,
    overlaps, gaps in villages, areas outside their parent); any problem stores nothing.
    """
    from app.migrate import upgrade
    from grid import service as grid_service
    from grid.coords import parse_crs

    try:
        parsed = parse_crs(crs)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    settings = Settings()
    engine = _engine()
    upgrade(engine)
    try:
        with session_scope(engine) as session:
            counts = grid_service.import_geojson(
                session,
                file.read_bytes(),
                crs=parsed,
                now=utcnow(),
                tolerance_m2=settings.grid_import_tolerance_m2,
            )
    except ImportRefused as exc:
        _fail_import(exc)
        return
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
    from dispatch import service as dispatch_service
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
                session,
                data,
                now=utcnow(),
                known_departments=known,
                cases_in_use=dispatch_service.open_cases_by_subcategory(session),
                note=file.name,
            )
    except ImportRefused as exc:
        _fail_import(exc)
        return
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

    settings = _signing_settings()  # the history rows it writes are keyed by the secret
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
    """Working days: published schedules (State Council notices), local overrides, checks."""


@calendar.command("set")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--workday/--holiday", required=True, help="what this date is")
@click.option("--note", default="", help="e.g. 国庆节 or 调休上班 (at most 100 characters)")
def calendar_set(day: Any, workday: bool, note: str) -> None:
    """Declare one date a working day or a rest day (source `override`: wins over any schedule)."""
    from core.errors import ValidationFailed
    from dispatch import calendar_service

    if len(note) > 100:
        _fail(ValidationFailed("--note is longer than 100 characters", code="invalid_calendar"))
    with session_scope(_engine()) as session:
        calendar_service.set_override(session, day=day.date(), is_workday=workday, note=note)
    click.echo(f"{day.date().isoformat()}: {'working day' if workday else 'rest day'}")


@calendar.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def calendar_import(path: Path) -> None:
    """Enter a year's published schedule from a JSON file (format: dispatch/calendar_notice.py).

    The file is checked whole first; on any error nothing is stored (exit 2). The year then
    counts as published: its rule holidays and warnings stop. Importing a year again replaces it.
    """
    from core.errors import ValidationFailed
    from dispatch import calendar_service
    from dispatch.calendar_notice import parse_notice

    try:
        data = json.loads(path.read_text("utf-8"))
        notice = parse_notice(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(ValidationFailed(f"not a UTF-8 JSON file: {exc}", code="invalid_calendar"))
        return
    except GridgovError as exc:
        _fail(exc)
        return
    with session_scope(_engine()) as session:
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
        with session_scope(_engine()) as session:
            calendar_service.publish_year(session, year=year, note=note[:200], now=utcnow())
    except GridgovError as exc:
        _fail(exc)
    click.echo(f"{year}: published schedule entered; no more rule holidays")


@calendar.command("list")
def calendar_list() -> None:
    """Print the stored dates (overrides and imported schedules) as JSON lines."""
    from dispatch import calendar_service

    with session_scope(_engine()) as session:
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
    with session_scope(_engine()) as session:
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


@main.group()
def audit() -> None:
    """The tamper-evident case log."""


@audit.command("verify")
@click.option(
    "--head",
    "head",
    default=None,
    metavar="CHECKPOINT",
    help="a line printed by `gridgov audit checkpoint`: the log must still hold it",
)
def audit_verify(head: str | None) -> None:
    """Check the whole log: every case's chain and state, the global chain; exit 1 when
    anything was altered, removed or cut back (one line per problem, naming the case)."""
    from dispatch import audit as audit_chain
    from dispatch import service as dispatch_service

    settings = _signing_settings()
    checkpoint = None
    if head is not None:
        try:
            checkpoint = audit_chain.read_checkpoint(head, key=settings.secret_key)
        except ValueError as exc:
            click.echo(f"log: --head refused: {exc}")
            click.echo("audit: the checkpoint is not valid", err=True)
            sys.exit(1)
    engine = dispatch_service.audit_reader(_engine())
    with session_scope(engine) as session:
        problems, cases = dispatch_service.verify_audit(
            session, key=settings.secret_key, checkpoint=checkpoint
        )
    for p in problems:
        if p.case_id is None:
            where = "log"
        else:
            where = f"case {p.case_id} ({p.case_no or 'case row missing'})"
        if p.seq is not None:
            where += f" row {p.seq}"
        click.echo(f"{where}: {p.problem}")
    if problems:
        click.echo(f"audit: {len(problems)} problem(s) in {cases} cases", err=True)
        sys.exit(1)
    click.echo(f"audit: {cases} cases, every chain intact")


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Print the signed head of the log as the last line; keep it outside the database, and
    `gridgov audit verify --head LINE` later proves the log was not cut back before it."""
    from dispatch import service as dispatch_service

    settings = _signing_settings()
    engine = dispatch_service.audit_reader(_engine())
    try:
        with session_scope(engine) as session:
            token = dispatch_service.audit_checkpoint(session, key=settings.secret_key)
    except GridgovError as exc:
        _fail(exc)
        return
    click.echo(token)
