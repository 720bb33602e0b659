"""Heat (热力): how many cases were reported per area, and when, for the console's map.

Counts cases by the area of a level (town 镇街, village 村居 or grid) holding their grid, over
local days, optionally for one category and split by local day or by hour of the day (0-23:
when in the day problems are reported). A case merged into another (并单) is the same problem
and is not counted again. The local time of an instant is taken with the zone's offset at the
period's start: exact for China's zones (no daylight saving), off by the shift near a
transition elsewhere.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Integer, cast, func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from dispatch.models import Case
from dispatch.stats import Period, Scope
from grid.models import CODE_LENGTH, AreaLevel

_EPOCH = date(1970, 1, 1)


class HeatBy(StrEnum):
    AREA = "area"  # one count per area over the whole period
    DAY = "day"  # per area and local day
    HOUR = "hour"  # per area and local hour of the day (0-23), summed over the period


class HeatCell(BaseModel):
    area_code: str
    bucket: str | int | None = Field(
        description="the local day (YYYY-MM-DD) with by=day, the hour 0-23 with by=hour, else null"
    )
    count: int


class HeatOut(BaseModel):
    level: str
    by: str
    category_code: str | None
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    total: int = Field(description="cases counted (the sum of the counts)")
    max_count: int = Field(description="the largest count, to scale a colour ramp")
    items: list[HeatCell]


def _epoch_seconds(session: Session) -> ColumnElement[Any]:
    reported = col(Case.reported_at)
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", reported)
    return cast(func.strftime("%s", reported), Integer)


def heat(
    session: Session,
    *,
    level: AreaLevel,
    period: Period,
    by: HeatBy = HeatBy.AREA,
    category_code: str | None = None,
    scope: Scope | None = None,
) -> HeatOut:
    digits = CODE_LENGTH[level]
    grid = col(Case.grid_code)
    area = grid if level is AreaLevel.GRID else func.substr(grid, 1, digits)
    offset = period.tz.utcoffset(period.start.replace(tzinfo=None)) or timedelta(0)
    local = _epoch_seconds(session) + int(offset.total_seconds())
    columns: list[ColumnElement[Any]] = [area.label("area")]
    if by is HeatBy.DAY:
        columns.append(cast(func.floor(local / 86400), Integer).label("bucket"))
    elif by is HeatBy.HOUR:
        columns.append((cast(func.floor(local / 3600), Integer) % 24).label("bucket"))
    query = select(*columns, func.count().label("n")).where(
        col(Case.reported_at) >= period.start,
        col(Case.reported_at) < period.end,
        col(Case.merged_into_id).is_(None),
    )
    if category_code is not None:
        query = query.where(col(Case.category_code) == category_code)
    if scope is not None and scope.area_code:
        query = query.where(grid.startswith(scope.area_code, autoescape=True))
    keys = [c.name for c in columns]
    query = query.group_by(*[c.name for c in columns]).order_by(*keys)
    items = []
    for row in session.execute(query):
        bucket: str | int | None = None
        if by is HeatBy.DAY:
            bucket = (_EPOCH + timedelta(days=int(row.bucket))).isoformat()
        elif by is HeatBy.HOUR:
            bucket = int(row.bucket)
        items.append(HeatCell(area_code=row.area, bucket=bucket, count=int(row.n)))
    return HeatOut(
        level=level.value,
        by=by.value,
        category_code=category_code,
        first=period.first,
        last=period.last,
        total=sum(i.count for i in items),
        max_count=max((i.count for i in items), default=0),
        items=items,
    )
