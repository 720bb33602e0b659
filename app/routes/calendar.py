"""HTTP glue for the working calendar: which dates are working days, and why."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import ActorDep, RuntimeDep
from dispatch import calendar_service
from dispatch.calendar_schemas import CalendarDayOut, CalendarOut

router = APIRouter(prefix="/v1/calendar", tags=["calendar"])


@router.get("", response_model=CalendarOut)
def get_calendar(
    runtime: RuntimeDep,
    actor: ActorDep,
    first: Annotated[date, Query(alias="from", description="first date (YYYY-MM-DD)")],
    last: Annotated[date, Query(alias="to", description="last date, included")],
) -> CalendarOut:
    """Each date with `workday` and its `source`; at most 400 dates (else 422 `invalid_range`).

    `warnings` names the years in the range whose rest days are computed by rule because no
    published schedule was entered for them.
    """
    days, warnings = calendar_service.list_days(runtime.calendars.get(), first=first, last=last)
    return CalendarOut(items=[CalendarDayOut.of(d) for d in days], warnings=warnings)
