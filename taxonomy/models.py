"""The catalogue in the database: each import is a new revision; the newest one is in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class CatalogueRevision(SQLModel, table=True):
    __tablename__ = "catalogue_revision"

    id: int | None = Field(default=None, primary_key=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
