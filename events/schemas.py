"""API shapes of incoming reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.text import CleanText, Identifier


class ReportIn(BaseModel):
    """One report. Coordinates and CRS are checked by the grid rules (stable error codes)."""

    model_config = ConfigDict(extra="forbid")

    client_id: Identifier = Field(
        min_length=1,
        max_length=64,
        description="the device's id for this report; resending it is safe",
    )
    lat: float | None = Field(default=None, description="latitude in `crs`")
    lng: float | None = Field(default=None, description="longitude in `crs`")
    crs: Identifier = Field(
        default="wgs84", max_length=32, description="wgs84 (GPS) or gcj02 (Amap/Tencent/WeChat)"
    )
    description: CleanText = Field(description="what is wrong, in the reporter's words")
    category_code: str | None = Field(default=None, max_length=2)
    subcategory_code: str | None = Field(default=None, max_length=8)
    occurred_at: datetime | None = None
    attachment_ids: list[Identifier] = Field(default_factory=list, max_length=20)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reports: list[dict[str, Any]] = Field(min_length=1, max_length=200)


class BatchItemOut(BaseModel):
    index: int
    client_id: str | None
    status: int
    case: dict[str, Any] | None = None
    error: dict[str, str] | None = None


class BatchOut(BaseModel):
    results: list[BatchItemOut]
