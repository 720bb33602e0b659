"""HTTP glue for the 考核 figures: per department and per area, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import date
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response
from openpyxl import Workbook

from app.deps import ActorDep, RuntimeDep, SessionDep, require_role
from app.params import only_params
from core.errors import InvalidRange, UnknownCategory
from core.models import Role
from core.security import Actor
from dispatch import board, heat, stats
from dispatch.board import BoardBy, BoardOut
from dispatch.heat import HeatBy, HeatOut
from dispatch.stats import AreaStatsOut, DepartmentStatsOut, Figures, Period, Scope
from grid.models import CODE_LENGTH, AreaLevel
from surveillance import alerts
from surveillance.alerts import WarningStatsOut

router = APIRouter(prefix="/v1/stats", tags=["stats"])

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# The longest period asked at once, in days (five years).
MAX_DAYS = 1830
FIRST_YEAR, LAST_YEAR = 2000, 2099


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


class Level(StrEnum):
    TOWN = "town"
    VILLAGE = "village"
    GRID = "grid"


_CSV_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "the items (JSON), or with `format=csv` the same as CSV (UTF-8, BOM), "
        "with `format=xlsx` as an Excel workbook (one sheet, the same columns)",
    }
}
First = Annotated[date, Query(alias="from", description="first local day (YYYY-MM-DD)")]
Last = Annotated[date, Query(alias="to", description="last local day, included")]
FormatQuery = Annotated[Format, Query(description="`json` (default), `csv` or `xlsx`")]


def _period(runtime: RuntimeDep, first: date, last: date) -> Period:
    if (
        last < first
        or (last - first).days >= MAX_DAYS
        or first.year < FIRST_YEAR
        or last.year > LAST_YEAR
    ):
        raise InvalidRange(
            first=first.isoformat(),
            last=last.isoformat(),
            max_days=MAX_DAYS,
            years=f"{FIRST_YEAR}-{LAST_YEAR}",
        )
    return Period.of(first, last, ZoneInfo(runtime.settings.timezone))


def _scope(actor: Actor) -> Scope:
    """Command centres: their area's cases (the district's: all); a department: its own row."""
    if actor.role == Role.DEPARTMENT:
        return Scope(department_code=actor.department_code or "")
    return Scope(area_code=actor.area_code)


def _table(
    name: str, period: Period, model: type[Figures], items: list[Any], format: Format
) -> Response:
    """The figures as a download: CSV (UTF-8 with BOM, opens in Excel) or an XLSX workbook."""
    rows = stats.csv_rows(model, items)
    filename = f"{name}-{period.first.isoformat()}-{period.last.isoformat()}.{format.value}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format is Format.XLSX:
        book = Workbook(write_only=True)
        sheet = book.create_sheet(title=name[:31])
        for row in rows:
            sheet.append(row)
        out = io.BytesIO()
        book.save(out)
        return Response(content=out.getvalue(), media_type=XLSX_TYPE, headers=headers)
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    return Response(
        content="\ufeff" + text.getvalue(), media_type="text/csv; charset=utf-8", headers=headers
    )


@router.get("/departments", response_model=DepartmentStatsOut, responses=_CSV_ANSWER)
def department_stats(
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(("from", "to", "format")))],
    first: First,
    last: Last,
    format: FormatQuery = Format.JSON,
) -> Any:
    """考核 figures per department over local days `from` to `to` (definitions in the README).

    Command centres (admin, dispatchers; a scoped dispatcher counts its area's cases only) get
    every department, a department its own row.
    """
    require_role(actor, Role.ADMIN, Role.DISPATCHER, Role.DEPARTMENT)
    period = _period(runtime, first, last)
    items = stats.department_figures(session, period=period, scope=_scope(actor))
    if format is not Format.JSON:
        return _table("departments", period, stats.DepartmentFigures, items, format)
    return DepartmentStatsOut(items=items)


@router.get("/areas", response_model=AreaStatsOut, responses=_CSV_ANSWER)
def area_stats(
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(("level", "from", "to", "format")))],
    level: Annotated[Level, Query(description="town (镇街), village (村居) or grid")],
    first: First,
    last: Last,
    format: FormatQuery = Format.JSON,
) -> Any:
    """考核 figures per area of a level over local days `from` to `to` (command centres; a
    scoped dispatcher gets the areas in or holding its own, counting its area's cases only)."""
    require_role(actor, Role.ADMIN, Role.DISPATCHER)
    period = _period(runtime, first, last)
    items = stats.area_figures(session, level=level.value, period=period, scope=_scope(actor))
    if format is not Format.JSON:
        return _table(f"areas-{level.value}", period, stats.AreaFigures, items, format)
    return AreaStatsOut(items=items)


@router.get("/heat", response_model=HeatOut, response_model_by_alias=True)
def heat_stats(
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(("level", "from", "to", "category_code", "by")))],
    first: First,
    last: Last,
    level: Annotated[Level, Query(description="town (镇街), village (村居) or grid")] = Level.GRID,
    category_code: Annotated[
        str | None, Query(max_length=2, description="one category (01-17); all when left out")
    ] = None,
    by: Annotated[
        HeatBy,
        Query(description="area (one count per area), day (per local day) or hour (0-23)"),
    ] = HeatBy.AREA,
) -> Any:
    """热力: cases reported per area of a level over local days `from` to `to`, for one
    category or all, optionally per local day or hour of the day: what the console's map
    colours. Command centres; a scoped dispatcher counts its own area's cases only."""
    require_role(actor, Role.ADMIN, Role.DISPATCHER)
    period = _period(runtime, first, last)
    if (
        category_code is not None
        and runtime.taxonomy.get().catalogue.category(category_code) is None
    ):
        raise UnknownCategory(category=category_code)
    return heat.heat(
        session,
        level=AreaLevel(level.value),
        period=period,
        by=by,
        category_code=category_code,
        scope=_scope(actor),
    )


@router.get("/warnings", response_model=WarningStatsOut)
def warning_stats(
    runtime: RuntimeDep,
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(("level", "from", "to")))],
    first: First,
    last: Last,
    level: Annotated[Level, Query(description="town (镇街), village (村居) or grid")] = Level.TOWN,
) -> WarningStatsOut:
    """预警 figures: warnings raised per area of a level over local days `from` to `to`, by
    kind and by where they stand now (command centres; a scoped one: its own area's)."""
    require_role(actor, Role.ADMIN, Role.DISPATCHER)
    period = _period(runtime, first, last)
    return alerts.warning_figures(
        session,
        digits=CODE_LENGTH[AreaLevel(level.value)],
        start=period.start,
        end=period.end,
        area_code=actor.area_code,
    )


@router.get("/open", response_model=BoardOut)
def open_board(
    session: SessionDep,
    actor: ActorDep,
    _known: Annotated[None, Depends(only_params(("by",)))],
    by: Annotated[BoardBy, Query(description="town, village, grid or department")] = BoardBy.TOWN,
) -> BoardOut:
    """Open cases now, with their yellow (预警) and red (超时) cards, per area or department:
    the SLA board and the map's colours; each caller sees the cases it may see."""
    return board.board(session, actor=actor, by=by)
