"""`gridgov grids` and `gridgov taxonomy`: boundaries and the catalogue, in and out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from sqlmodel import col

from app.cli.base import engine_from_settings, fail
from core.clock import utcnow
from core.db import session_scope
from core.errors import GridgovError
from core.settings import Settings


@click.group()
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
    engine = engine_from_settings()
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
    except GridgovError as exc:
        fail(exc)
    click.echo(json.dumps(counts))


@grids.command("export")
def grids_export() -> None:
    """Print every active area as a GeoJSON FeatureCollection (WGS-84)."""
    from grid import service as grid_service

    with session_scope(engine_from_settings()) as session:
        click.echo(json.dumps(grid_service.export_feature_collection(session), ensure_ascii=False))


@click.group()
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
    engine = engine_from_settings()
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
    except GridgovError as exc:
        fail(exc)
    subs = sum(len(c.subcategories) for c in cat.categories)
    click.echo(f"catalogue installed: {len(cat.categories)} categories, {subs} subcategories")


@taxonomy.command("export")
def taxonomy_export() -> None:
    """Print the catalogue in force as JSON."""
    from taxonomy import service as taxonomy_service

    with session_scope(engine_from_settings()) as session:
        tax = taxonomy_service.load_taxonomy(session)
    click.echo(json.dumps(tax.catalogue.model_dump(mode="json"), ensure_ascii=False, indent=1))
