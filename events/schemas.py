"""API shapes of incoming reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from core.text import CleanText, Identifier

# The device's id for one report: resending it is safe (the same case comes back).
ClientId = Annotated[
    Identifier,
    Field(
        min_length=1,
        max_length=64,
        description="the device's id for this report; resending it is safe",
    ),
]


class ReportIn(BaseModel):
    """One report. Coordinates and CRS are checked by the grid rules (stable error codes)."""

    model_config = ConfigDict(extra="forbid")

    client_id: ClientId
    lat: float | None = Field(default=None, description="latitude in `crs`")
    lng: float | None = Field(default=None, description="longitude in `crs`")
    crs: Identifier = Field(
        default="wgs84", max_length=32, description="wgs84 (GPS) or gcj02 (Amap/Tencent/WeChat)"
    )
    description: CleanText = Field(description="what is wrong, in the reporter's words")
    category_code: Identifier | None = Field(default=None, max_length=2)
    subcategory_code: Identifier | None = Field(default=None, max_length=8)
    occurred_at: datetime | None = None
    attachment_ids: list[Annotated[Identifier, Field(max_length=64)]] = Field(
        default_factory=list, max_length=20
    )


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items stay raw here: each is validated on its own, so one bad item fails only itself.
    reports: list[Any] = Field(
        min_length=1, max_length=200, description="up to 200 reports, each answered on its own"
    )


class BatchItemOut(BaseModel):
    index: int
    client_id: str | None
    status: int
    case: dict[str, Any] | None = None
    error: dict[str, str] | None = None


class BatchOut(BaseModel):
    results: list[BatchItemOut]
