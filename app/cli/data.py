"""`gridgov grids` and `gridgov taxonomy`: boundaries and the catalogue, in and out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

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
    """Validate and install a catalogue as the new revision: `.json` (as exported), `.xlsx`
    (sheets items, escalation and optionally catalogue) or `.csv` (the items table only: the
    escalation ladders and version of the catalogue in force are kept). Checked whole; every
    problem names its place (sheet, row and column in a spreadsheet); nothing is stored on
    any problem."""
    from sqlalchemy import select

    from app.migrate import upgrade
    from dispatch import service as dispatch_service
    from dispatch.models import Department
    from taxonomy import service as taxonomy_service
    from taxonomy import workbook
    from taxonomy.sheets import UnreadableFile

    kind = workbook.format_of(file)
    if kind is None:
        _refuse(f"{file.name}: expected a .json, .xlsx or .csv file")
    data: dict[str, Any] = {}
    sheet: workbook.SheetCatalogue | None = None
    if kind == "json":
        try:
            loaded = json.loads(file.read_text("utf-8"))
        except (ValueError, UnicodeError) as exc:
            _refuse(f"not JSON: {exc}")
        if not isinstance(loaded, dict):
            _refuse("expected a JSON object")
        data = loaded
    engine = engine_from_settings()
    upgrade(engine)
    try:
        with session_scope(engine) as session:
            if kind != "json":
                current = taxonomy_service.load_taxonomy(session).catalogue
                try:
                    sheet = workbook.read_catalogue_file(file, current)
                except UnreadableFile as exc:
                    _refuse(str(exc))
                data = sheet.data
            known = set(session.execute(select(col(Department.code))).scalars())
            cat = taxonomy_service.import_catalogue(
                session,
                data,
                now=utcnow(),
                known_departments=known,
                cases_in_use=dispatch_service.open_cases_by_subcategory(session),
                note=file.name,
                locate=sheet.locate if sheet else None,
                problems=sheet.problems if sheet else (),
            )
    except GridgovError as exc:
        fail(exc)
    subs = sum(len(c.subcategories) for c in cat.categories)
    items = sum(len(s.items) for _, s in cat.iter_subcategories())
    click.echo(
        f"catalogue installed: {len(cat.categories)} categories, {subs} subcategories, "
        f"{items} items"
    )
    if kind == "csv":
        click.echo("escalation ladders and version kept from the catalogue in force")


def _refuse(message: str) -> NoReturn:
    """A file that cannot be read as a catalogue at all."""
    click.echo(f"error: invalid_catalogue: {message}", err=True)
    sys.exit(2)


@taxonomy.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "xlsx", "csv"]),
    default=None,
    help="default: from the --output suffix, else json",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="write to this file instead of standard output (required for xlsx)",
)
def taxonomy_export(fmt: str | None, output: Path | None) -> None:
    """Write the catalogue in force as `taxonomy import` reads it: JSON (default, to standard
    output), an XLSX workbook (items, escalation and catalogue sheets) or the CSV items table
    (UTF-8 with a byte-order mark, so Excel shows the Chinese)."""
    from taxonomy import service as taxonomy_service
    from taxonomy import workbook

    if fmt is None:
        fmt = workbook.format_of(output) if output is not None else "json"
        if fmt is None:
            assert output is not None
            click.echo(
                f"error: cannot tell the format from {output.name!r}: give --format json, xlsx "
                "or csv",
                err=True,
            )
            sys.exit(2)
    if fmt == "xlsx" and output is None:
        click.echo(
            "error: an XLSX workbook is binary and is not written to the terminal: "
            "give --output FILE.xlsx",
            err=True,
        )
        sys.exit(2)
    with session_scope(engine_from_settings()) as session:
        catalogue = taxonomy_service.load_taxonomy(session).catalogue
    if fmt == "xlsx":
        assert output is not None
        workbook.write_xlsx(catalogue, output)
        return
    if fmt == "csv":
        text = workbook.catalogue_csv(catalogue)
    else:
        text = json.dumps(catalogue.model_dump(mode="json"), ensure_ascii=False, indent=1) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8", newline="")
