"""What the intake tests share: a report body inside a demo grid, and the rows intake writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from dispatch.models import Case, CaseHistory
from events.models import Report
from tests.conftest import Api, new_client_id

GRID = "440604011001001"


def counts(api: Api) -> tuple[int, int, int]:
    """(cases, history rows, reports) in the database."""
    with Session(api.engine) as s:
        return (
            s.execute(select(func.count()).select_from(Case)).scalar_one(),
            s.execute(select(func.count()).select_from(CaseHistory)).scalar_one(),
            s.execute(select(func.count()).select_from(Report)).scalar_one(),
        )


def report_body(
    point: Callable[[str], tuple[float, float]], *, grid: str = GRID, **over: Any
) -> dict[str, Any]:
    """A valid report inside `grid` (WGS-84), with a fresh client_id; `over` replaces fields."""
    lng, lat = point(grid)
    body = {
        "client_id": new_client_id(),
        "lat": lat,
        "lng": lng,
        "crs": "wgs84",
        "description": "小区门口垃圾堆积很多天没人清理，臭气熏天",
    }
    body.update(over)
    return body
