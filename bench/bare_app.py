"""The baseline for bench/intake.py: a bare FastAPI endpoint that only inserts a gg_case row.

No auth, no placement, no classification, no routing, no history: the request already carries
what the real intake would work out (reporter, grid, category, unit, limit), and the endpoint
writes the same columns with SQLAlchemy Core, one transaction per request, on the app's own
engine setup (core.db.make_engine). Served by uvicorn exactly like the real app:

    GRIDGOV_DATABASE_URL=... python -m uvicorn bare_app:create_bare_app --factory --app-dir bench
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from shapely.geometry import Point
from sqlalchemy import insert

from core.db import make_engine
from dispatch.models import Case, CaseStatus, WarningLevel


class BareReportIn(BaseModel):
    """The real intake's body plus what intake would derive from it (precomputed by the bench)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    lat: float
    lng: float
    crs: str = "wgs84"
    description: str
    reporter_id: int
    channel: str
    grid_code: str
    grid_rule: str
    category_code: str
    subcategory_code: str
    classification_score: float | None
    department_code: str
    urgency: str
    time_limit_value: int
    time_limit_unit: str
    warn_in_s: float
    due_in_s: float


class BareCaseOut(BaseModel):
    id: int
    case_no: str


def create_bare_app() -> FastAPI:
    engine = make_engine(os.environ["GRIDGOV_DATABASE_URL"])
    table = Case.__table__  # type: ignore[attr-defined]
    app = FastAPI(title="gridgov bare insert baseline", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.post("/bare/reports", response_model=BareCaseOut, status_code=201)
    def create_report(report: BareReportIn) -> BareCaseOut:
        now = datetime.now(UTC)
        warn_at = now + timedelta(seconds=report.warn_in_s)
        values = {
            "case_no": report.client_id[:32],
            "status": CaseStatus.REPORTED.value,
            "channel": report.channel,
            "reporter_id": report.reporter_id,
            "description": report.description,
            "lat": report.lat,
            "lng": report.lng,
            "location": Point(report.lng, report.lat),
            "grid_code": report.grid_code,
            "grid_rule": report.grid_rule,
            "category_code": report.category_code,
            "subcategory_code": report.subcategory_code,
            "classification_score": report.classification_score,
            "department_code": report.department_code,
            "urgency": report.urgency,
            "time_limit_value": report.time_limit_value,
            "time_limit_unit": report.time_limit_unit,
            "warning_level": WarningLevel.NONE.value,
            "escalation_level": 0,
            "extension_count": 0,
            "return_count": 0,
            "redo_count": 0,
            "paused_seconds": 0.0,
            "clock_started_at": now,
            "warn_at": warn_at,
            "due_at": now + timedelta(seconds=report.due_in_s),
            "next_check_at": warn_at,
            "reported_at": now,
            "updated_at": now,
            "history_seq": 0,
            "history_head": "",
            "version": 1,
        }
        with engine.begin() as conn:
            case_id = conn.execute(
                insert(table).values(**values).returning(table.c.id)
            ).scalar_one()
        return BareCaseOut(id=case_id, case_no=values["case_no"])

    return app
