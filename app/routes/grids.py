"""HTTP glue for grids: locate a point, list grids as GeoJSON, list areas by name."""

from __future__ import annotations

import gzip
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from app.deps import ActorDep, RuntimeDep, SessionDep
from app.params import only_params
from core.text import Identifier
from grid import service as grid_service
from grid.models import AreaLevel

router = APIRouter(prefix="/v1/grids", tags=["grids"])
areas_router = APIRouter(prefix="/v1/areas", tags=["areas"])


class PathItem(BaseModel):
    code: str
    name: str
    level: str


class LocateOut(BaseModel):
    grid_code: str
    name: str
    path: list[PathItem]
    rule: str
    distance_m: float
    lat: float
    lng: float


@router.get("/locate", response_model=LocateOut)
def locate(
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    lat: Annotated[Identifier | None, Query(max_length=32)] = None,
    lng: Annotated[Identifier | None, Query(max_length=32)] = None,
    crs: Annotated[Identifier, Query(max_length=32)] = "wgs84",
) -> LocateOut:
    """The micro-grid of a point (WGS-84 or GCJ-02), with its path and the rule that placed it."""
    point = grid_service.check_point(lat, lng, crs)
    located = grid_service.place(
        runtime.grids.get(), point, tolerance_m=runtime.settings.grid_tolerance_m
    )
    path = grid_service.area_path(session, located.placement.grid_code)
    return LocateOut(
        grid_code=located.placement.grid_code,
        name=path[-1].name,
        path=[PathItem(code=a.code, name=a.name, level=a.level) for a in path],
        rule=located.placement.rule,
        distance_m=round(located.placement.distance_m, 2),
        lat=located.lat,
        lng=located.lng,
    )


# Simplified outlines (the console's maps) kept per process as encoded JSON, for as long as the
# grid revision holds (a new grid index object from `runtime.grids` means the grids changed),
# plain and gzipped: 16,417 grid outlines are 5.8 MB of JSON, 0.58 MB compressed
# (bench/console_map.py); compressed once per revision, not once per console opening the map.
OUTLINE_CACHE_ENTRIES = 32


def _accepts_gzip(request: Request) -> bool:
    """Whether Accept-Encoding names gzip (or *) with a weight above zero."""
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, *params = (p.strip().lower() for p in part.split(";"))
        if coding not in ("gzip", "*"):
            continue
        weight = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            return float(weight) > 0
        except ValueError:
            return False
    return False


@router.get("", response_model=dict[str, Any])
def list_grids(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(("level", "simplify", "parent")))],
    level: Annotated[AreaLevel, Query()] = AreaLevel.GRID,
    simplify: Annotated[
        float | None,
        Query(ge=0.1, le=5000, description="metres: lighter outlines for a map (6 decimals)"),
    ] = None,
    parent: Annotated[
        str | None, Query(pattern=r"^(\d{3}){2,4}$", description="only the areas inside this one")
    ] = None,
) -> dict[str, Any] | Response:
    """Active areas of one level as a GeoJSON FeatureCollection (WGS-84)."""
    if simplify is None:
        return grid_service.export_feature_collection(session, level=level, parent_code=parent)
    index = runtime.grids.get()
    key = (level.value, simplify, parent)
    cache = runtime.outlines
    hit = cache.get(key)
    if hit is None or hit[0] is not index:
        collection = grid_service.export_feature_collection(
            session, level=level, simplify_m=simplify, parent_code=parent
        )
        body = json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode()
        if len(cache) >= OUTLINE_CACHE_ENTRIES:
            cache.clear()
        hit = cache[key] = (index, body, gzip.compress(body, compresslevel=6, mtime=0))
    headers = {"Vary": "Accept-Encoding"}
    if _accepts_gzip(request):
        headers["Content-Encoding"] = "gzip"
        return Response(content=hit[2], media_type="application/json", headers=headers)
    return Response(content=hit[1], media_type="application/json", headers=headers)


class AreaOut(BaseModel):
    code: str
    name: str
    level: str
    parent_code: str | None


class AreaListOut(BaseModel):
    items: list[AreaOut]
    total: int


@areas_router.get(
    "",
    response_model=AreaListOut,
)
def list_areas(
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(("level", "parent", "limit", "offset")))],
    level: Annotated[AreaLevel | None, Query()] = None,
    parent: Annotated[
        str | None, Query(pattern=r"^(\d{3}){2,4}$", description="the parent area's code")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> AreaListOut:
    """Active areas with their names (no geometry), by code; `total` counts every page."""
    page = grid_service.list_areas(
        session, level=level, parent_code=parent, limit=limit, offset=offset
    )
    return AreaListOut(
        items=[
            AreaOut(code=a.code, name=a.name, level=a.level, parent_code=a.parent_code)
            for a in page.items
        ],
        total=page.total,
    )
