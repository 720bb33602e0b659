"""The file an operator imports when the State Council publishes a year's holiday schedule.

It mirrors the notice (国务院办公厅关于YYYY年部分节假日安排的通知): each holiday is a range of
rest days and the weekend days that become working days for it (调休上班). JSON, UTF-8:

    {
      "year": 2027,
      "note": "国办发明电〔2026〕N号",
      "holidays": [
        {"name": "元旦", "from": "2027-01-01", "to": "2027-01-03"},
        {"name": "春节", "from": "2027-02-05", "to": "2027-02-12", "workdays": ["2027-02-20"]}
      ]
    }

The file is checked whole before anything is stored: dates fall in the year (or the December
before and January after, where notices sometimes reach), a holiday lasts at most 15 days,
no date is named twice, and a 调休 working day is a Saturday or Sunday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidCalendar
from dispatch.holidays import RULE_YEARS

MAX_HOLIDAY_DAYS = 15


class _Holiday(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=50)
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    workdays: list[date] = Field(default_factory=list, max_length=10)


class _Notice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int
    note: str = Field(default="", max_length=200)
    holidays: list[_Holiday] = Field(min_length=1, max_length=30)


@dataclass(frozen=True)
class NoticeDay:
    day: date
    workday: bool
    note: str


@dataclass(frozen=True)
class Notice:
    """A validated schedule: the dates it names, in order."""

    year: int
    note: str
    days: tuple[NoticeDay, ...]


def parse_notice(data: Any) -> Notice:
    """A notice from decoded JSON; every problem is named in one `invalid_calendar` error."""
    try:
        raw = _Notice.model_validate(data)
    except ValidationError as exc:
        raise InvalidCalendar(
            problems=[
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            ]
        ) from None
    problems: list[str] = []
    if raw.year not in RULE_YEARS:
        raise InvalidCalendar(
            problems=[f"year {raw.year} is outside {RULE_YEARS.start}-{RULE_YEARS.stop - 1}"]
        )
    earliest, latest = date(raw.year - 1, 12, 1), date(raw.year + 1, 1, 31)
    named: dict[date, NoticeDay] = {}

    def name_day(day: date, workday: bool, note: str, holiday: str) -> None:
        if not earliest <= day <= latest:
            problems.append(f"{holiday}: {day} is not in or next to {raw.year}")
        elif day in named:
            problems.append(f"{holiday}: {day} is named twice")
        else:
            named[day] = NoticeDay(day, workday, note)

    for holiday in raw.holidays:
        if holiday.last < holiday.first:
            problems.append(f"{holiday.name}: ends ({holiday.last}) before it starts")
            continue
        length = (holiday.last - holiday.first).days + 1
        if length > MAX_HOLIDAY_DAYS:
            problems.append(f"{holiday.name}: {length} days is longer than {MAX_HOLIDAY_DAYS}")
            continue
        for n in range(length):
            name_day(holiday.first + timedelta(days=n), False, holiday.name, holiday.name)
        for workday in holiday.workdays:
            if workday.weekday() < 5:
                problems.append(
                    f"{holiday.name}: working day {workday} is a weekday (调休 moves a weekend day)"
                )
                continue
            name_day(workday, True, f"{holiday.name}调休上班", holiday.name)
    if problems:
        raise InvalidCalendar(problems=problems)
    return Notice(raw.year, raw.note, tuple(sorted(named.values(), key=lambda d: d.day)))
