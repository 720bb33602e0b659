"""Grid rules with the database at the edge: placing points, importing and exporting areas."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from core.errors import (
    GridNotFound,
    InvalidArea,
    InvalidCoordinates,
    InvalidGeojson,
    InvalidGrids,
    OutsideDistrict,
    UnknownCrs,
)
from core.revisioned import RevisionedCache
from core.text import no_controls
from grid.consistency import check_hierarchy
from grid.coords import Crs, parse_crs, to_wgs84
from grid.geojson import Source, scan_features
from grid.index import GridIndex, GridShape, Placement
from grid.models import CODE_LENGTH, Area, AreaLevel, GridRevision


def current_revision(session: Session) -> int:
    rev = session.execute(
        select(col(GridRevision.revision)).where(col(GridRevision.id) == 1)
    ).scalar()
    return int(rev or 0)


def bump_revision(session: Session, *, now: datetime) -> None:
    """Tell every process (through the next refresh) that the grids changed."""
    row = session.get(GridRevision, 1)
    if row is None:
        session.add(GridRevision(id=1, revision=1, changed_at=now))
    else:
        session.execute(
            update(GridRevision)
            .where(col(GridRevision.id) == 1)
            .values(revision=col(GridRevision.revision) + 1, changed_at=now)
        )
    session.flush()


def load_index(session: Session) -> GridIndex:
    revision = current_revision(session)
    rows = session.execute(
        select(col(Area.code), col(Area.geom)).where(
            col(Area.level) == AreaLevel.GRID, col(Area.active).is_(True)
        )
    ).all()
    return GridIndex([GridShape(code, geom) for code, geom in rows], revision=revision)


def grid_resolver(engine: Engine, *, refresh_seconds: float) -> RevisionedCache[GridIndex]:
    """This process's grid index, rebuilt when another process bumps the grid revision."""
    return RevisionedCache(
        engine,
        revision=current_revision,
        build=lambda session, _rev: load_index(session),
        refresh_seconds=refresh_seconds,
    )


@dataclass(frozen=True)
class PointIn:
    """A point as the user gave it, before conversion."""

    lng: float
    lat: float
    crs: Crs


def check_point(lat: Any, lng: Any, crs: Any) -> PointIn:
    """Validate raw coordinates; every defect is a 422 with a stable code."""
    try:
        parsed_crs = parse_crs(str(crs)) if crs is not None else Crs.WGS84
    except ValueError:
        raise UnknownCrs(crs=str(crs)[:64]) from None
    if lat is None or lng is None:
        raise InvalidCoordinates()
    try:
        lat_f = float(lat)
        lng_f = float(lng)
    except (TypeError, ValueError):
        raise InvalidCoordinates() from None
    if not (math.isfinite(lat_f) and math.isfinite(lng_f)):
        raise InvalidCoordinates()
    if not (-90.0 <= lat_f <= 90.0 and -180.0 <= lng_f <= 180.0):
        raise InvalidCoordinates()
    return PointIn(lng=lng_f, lat=lat_f, crs=parsed_crs)


@dataclass(frozen=True)
class Located:
    lng: float  # WGS-84
    lat: float
    placement: Placement


def place(index: GridIndex, point: PointIn, *, tolerance_m: float) -> Located:
    """Convert to WGS-84 and place in a micro-grid, or refuse a point outside the district."""
    lng, lat = to_wgs84(point.lng, point.lat, point.crs)
    placement = index.locate(lng, lat, tolerance_m=tolerance_m)
    if placement is None:
        raise OutsideDistrict(
            lat=point.lat, lng=point.lng, crs=str(point.crs), tolerance_m=tolerance_m
        )
    return Located(lng=lng, lat=lat, placement=placement)


def area_path(session: Session, grid_code: str) -> list[Area]:
    """District → town → village → grid for a grid code (codes nest by prefix)."""
    codes = [grid_code[:n] for n in (6, 9, 12, 15)]
    rows = session.execute(select(Area).where(col(Area.code).in_(codes))).scalars().all()
    by_code = {a.code: a for a in rows}
    if grid_code not in by_code:
        raise GridNotFound(grid=grid_code)
    return [by_code[c] for c in codes if c in by_code]


@dataclass(frozen=True)
class AreaPage:
    items: list[Area]
    total: int


def list_areas(
    session: Session, *, level: AreaLevel | None, parent_code: str | None, limit: int, offset: int
) -> AreaPage:
    """Active areas by code, of one level and/or under one parent (a page, and how many in all)."""
    conditions: list[ColumnElement[bool]] = [col(Area.active).is_(True)]
    if level is not None:
        conditions.append(col(Area.level) == level)
    if parent_code is not None:
        conditions.append(col(Area.parent_code) == parent_code)
    total = session.execute(select(func.count()).select_from(Area).where(*conditions)).scalar()
    rows = session.execute(
        select(Area).where(*conditions).order_by(col(Area.code)).limit(limit).offset(offset)
    ).scalars()
    return AreaPage(items=list(rows), total=int(total or 0))


def grid_is_active(session: Session, code: str) -> bool:
    found = session.execute(
        select(col(Area.id)).where(
            col(Area.code) == code,
            col(Area.level) == AreaLevel.GRID,
            col(Area.active).is_(True),
        )
    ).first()
    return found is not None


def level_for_code(code: str) -> AreaLevel:
    for level, length in CODE_LENGTH.items():
        if len(code) == length:
            return level
    raise ValueError(f"area code {code!r} must have 6, 9, 12 or 15 digits")


@dataclass(frozen=True)
class AreaIn:
    code: str
    name: str
    geometry: BaseGeometry


_CODE = re.compile(r"[0-9]+")
_NAME_MAX = 100  # Area.name
_CHUNK = 500  # codes per IN (...) lookup


def import_geojson(
    session: Session, source: Source, *, crs: Crs | str, now: datetime, tolerance_m2: float
) -> dict[str, int]:
    """Validate a whole GeoJSON file of areas against the stored hierarchy, then upsert it.

    Features need `code` (6/9/12/15 digits: district, town, village, grid) and `name`. Any
    problem (unreadable or invalid geometry, bad or duplicate code, orphan, overlap, gap, area
    outside its parent) refuses the whole file with every problem named; nothing is stored.
    """
    try:
        features = scan_features(source, crs=crs, strict=True)
    except ValueError as exc:
        raise InvalidGeojson(reason=str(exc)) from None
    problems: list[str] = []
    items: list[AreaIn] = []
    unusable: set[str] = set()
    for feature in features:
        raw_code = feature.properties.get("code")
        code = "" if raw_code is None else str(raw_code).strip()
        raw_name = feature.properties.get("name")
        name = code if raw_name is None or not str(raw_name).strip() else str(raw_name).strip()
        where = f"feature {feature.index}" + (f" ({code})" if code else "")
        if not code:
            problems.append(f"feature {feature.index}: no `code` property")
        if feature.geometry is None:
            problems.append(feature.problem.replace(f"feature {feature.index}", where, 1))
            if code:
                unusable.add(code)
            continue
        if code:
            items.append(AreaIn(code=code, name=name, geometry=feature.geometry))
    return _import(
        session, items, now=now, tolerance_m2=tolerance_m2, known=problems, unusable=unusable
    )


def _import(
    session: Session,
    areas: Sequence[AreaIn],
    *,
    now: datetime,
    tolerance_m2: float,
    known: list[str],
    unusable: set[str],
) -> dict[str, int]:
    # One import at a time (PostgreSQL; SQLite writers are serialised already): two imports
    # validated side by side could each be sound and overlap together.
    session.execute(select(col(GridRevision.id)).where(col(GridRevision.id) == 1).with_for_update())
    problems = list(known)
    problems += _item_problems(areas)
    good = {a.code: a.geometry for a in areas if _code_problem(a.code) is None}
    rows = session.execute(
        select(col(Area.code), col(Area.geom)).where(col(Area.active).is_(True))
    ).all()
    stored: dict[str, BaseGeometry] = {code: geom for code, geom in rows}  # noqa: C416
    problems += check_hierarchy(
        good,
        stored,
        tolerance_m2=tolerance_m2,
        also_in_file=unusable | {a.code for a in areas},
    )
    if problems:
        raise InvalidGrids(problems=problems)
    return upsert_areas(session, areas, now=now)


def _code_problem(code: str) -> str | None:
    if not _CODE.fullmatch(code):
        return f"code {code!r} is not a string of digits"
    if len(code) not in (6, 9, 12, 15):
        return (
            f"code {code} has {len(code)} digits; it must have 6 (district), 9 (town), "
            "12 (village) or 15 (grid)"
        )
    return None


def _item_problems(areas: Sequence[AreaIn]) -> list[str]:
    """Per-area defects: code format, duplicate codes, names that cannot be stored."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for item in areas:
        seen[item.code] = seen.get(item.code, 0) + 1
        bad = _code_problem(item.code)
        if bad is not None:
            problems.append(bad)
        if len(item.name) > _NAME_MAX:
            problems.append(f"{item.code}: name longer than {_NAME_MAX} characters")
        else:
            try:
                no_controls(item.name)
            except ValueError:
                problems.append(f"{item.code}: name contains control characters")
    for code, count in seen.items():
        if count > 1:
            problems.append(f"{code}: appears {count} times in the file")
    return problems


def upsert_areas(session: Session, areas: Iterable[AreaIn], *, now: datetime) -> dict[str, int]:
    """Insert or replace areas by code (retiring nothing), then bump the grid revision.

    Writes without the hierarchy checks: for trusted data (the demo); files go through
    `import_geojson`.
    """
    items = list(areas)
    existing: dict[str, Area] = {}
    codes = list({a.code for a in items})
    for i in range(0, len(codes), _CHUNK):
        chunk = codes[i : i + _CHUNK]
        for row in session.execute(select(Area).where(col(Area.code).in_(chunk))).scalars():
            existing[row.code] = row
    created = updated = 0
    for item in items:
        if not item.code.isdigit():
            raise InvalidArea(area=item.code)
        try:
            level = level_for_code(item.code)
        except ValueError:
            raise InvalidArea(area=item.code) from None
        if item.geometry.is_empty or item.geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise InvalidArea(area=item.code)
        geom = shapely.make_valid(item.geometry) if not item.geometry.is_valid else item.geometry
        parent = None if level is AreaLevel.DISTRICT else item.code[: CODE_LENGTH[level] - 3]
        row = existing.get(item.code)
        if row is None:
            row = Area(
                code=item.code,
                name=item.name,
                level=level,
                parent_code=parent,
                geom=geom,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            existing[item.code] = row
            created += 1
        else:
            row.name = item.name
            row.geom = geom
            row.active = True
            row.updated_at = now
            updated += 1
    session.flush()
    bump_revision(session, now=now)
    return {"created": created, "updated": updated}


# Metres per degree of latitude: a simplification tolerance in metres, as degrees.
METRES_PER_DEGREE = 111_320.0


def _drawn(geom: Any, simplify_m: float | None) -> Any:
    """A shape for drawing: simplified within `simplify_m` metres (topology kept, so no ring
    collapses) and coordinates cut to 6 decimals (~0.1 m)."""
    if simplify_m:
        geom = geom.simplify(simplify_m / METRES_PER_DEGREE, preserve_topology=True)
    return shapely.set_precision(geom, 1e-6)


def export_feature_collection(
    session: Session,
    *,
    level: AreaLevel | None = None,
    simplify_m: float | None = None,
    parent_code: str | None = None,
) -> dict[str, Any]:
    """Active areas as GeoJSON (WGS-84); `simplify_m` gives lighter outlines for a map, the
    export (no simplification) gives them as stored."""
    query = select(Area).where(col(Area.active).is_(True)).order_by(col(Area.code))
    if level is not None:
        query = query.where(col(Area.level) == level)
    if parent_code is not None:
        query = query.where(col(Area.code).startswith(parent_code, autoescape=True))
    features = [
        {
            "type": "Feature",
            "id": a.code,
            "properties": {
                "code": a.code,
                "name": a.name,
                "level": a.level,
                "parent_code": a.parent_code,
            },
            "geometry": mapping(a.geom if simplify_m is None else _drawn(a.geom, simplify_m)),
        }
        for a in session.execute(query).scalars()
    ]
    return {"type": "FeatureCollection", "features": features}
