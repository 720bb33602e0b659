"""API shapes of the working calendar (`GET /v1/calendar`)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from dispatch.calendar import CalendarDay, DaySource


class CalendarDayOut(BaseModel):
    date: date
    workday: bool
    source: DaySource = Field(
        description="official (a published schedule names the date), rule (a statutory holiday "
        "computed for a year without a published schedule), override (an operator's word), "
        "weekend, weekday"
    )
    note: str = Field(description="the holiday's name or the operator's note; may be empty")

    @classmethod
    def of(cls, day: CalendarDay) -> CalendarDayOut:
        return cls(date=day.day, workday=day.workday, source=day.source, note=day.note)


class CalendarOut(BaseModel):
    items: list[CalendarDayOut]
    warnings: list[str] = Field(
        description="one per year in the range without a published schedule (days guessed)"
    )
