"""Tables of the administrative hierarchy: district → town → village → micro-grid."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from core.db import GeometryType, UTCDateTime


class AreaLevel(StrEnum):
    DISTRICT = "district"
    TOWN = "town"
    VILLAGE = "village"
    GRID = "grid"


# Code length by level: 6-digit county, +3 town, +3 village, +3 grid serial.
CODE_LENGTH = {
    AreaLevel.DISTRICT: 6,
    AreaLevel.TOWN: 9,
    AreaLevel.VILLAGE: 12,
    AreaLevel.GRID: 15,
}


class Area(SQLModel, table=True):
    """One unit of the hierarchy; retired units stay (old cases keep the grid they were in)."""

    __tablename__ = "area"
    __table_args__ = (
        Index("ix_area_level_active", "level", "active"),
        Index("ix_area_geom", "geom", postgresql_using="gist"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=15, unique=True, index=True)
    name: str = Field(max_length=100)
    level: str = Field(max_length=16)
    parent_code: str | None = Field(default=None, max_length=15, index=True)
    active: bool = Field(default=True)
    geom: Any = Field(sa_column=Column("geom", GeometryType("GEOMETRY"), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class GridRevision(SQLModel, table=True):
    """A single counter bumped whenever grids change, so every process rebuilds its index."""

    __tablename__ = "grid_revision"

    id: int = Field(default=1, primary_key=True)
    revision: int = Field(default=0)
    changed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
