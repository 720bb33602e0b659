"""Statutory rest days (法定节假日) computed by rule, for a year without a published notice.

The rule is 《全国年节及纪念日放假办法》 as amended in 2024 (in force since 2025), article 2:
元旦 1 day (1 Jan); 春节 4 days (除夕 to 正月初三); 清明节 1 day (the solar term 清明);
劳动节 2 days (1-2 May); 端午节 1 day (五月初五); 中秋节 1 day (八月十五); 国庆节 3 days (1-3 Oct).

Weekends: article 6 of the same law says a holiday of all citizens that falls on a Saturday or
Sunday is made up on a working day (补假). So every statutory day gives one weekday off: when it
falls on a weekend, or on another statutory day (中秋 on 国庆, as in 2028), the first weekday
after it that is not already a rest day is the day off instead. This is the legal minimum; the
yearly notice then moves days around (调休: longer breaks paid for with working weekends), which
no rule can know, so an operator enters the notice when it comes out (`gridgov calendar import`).

Lunar dates and the solar term come from `lunar_python` (6tail's 寿星天文历 algorithms), checked in
the tests against known dates (春节 2027-02-06, 2028-01-26) and against the published schedules
of 2025 and 2026.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from types import MappingProxyType

from lunar_python import Lunar

RULE_YEARS = range(1901, 2100)  # the lunar tables everyone agrees on; outside, no rule days
MAKE_UP = "补假"


def _solar(lunar: Lunar) -> date:
    solar = lunar.getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def statutory_days(year: int) -> list[tuple[date, str]]:
    """The statutory days of `year` in date order, one per day and holiday (a date may repeat)."""
    new_year_lunar = _solar(Lunar.fromYmd(year, 1, 1))  # 正月初一
    qingming = Lunar.fromYmd(year, 1, 1).getJieQiTable()["清明"]
    days = [
        (date(year, 1, 1), "元旦"),
        *((new_year_lunar + timedelta(days=n), "春节") for n in range(-1, 3)),  # 除夕 to 初三
        (date(qingming.getYear(), qingming.getMonth(), qingming.getDay()), "清明节"),
        (date(year, 5, 1), "劳动节"),
        (date(year, 5, 2), "劳动节"),
        (_solar(Lunar.fromYmd(year, 5, 5)), "端午节"),
        (_solar(Lunar.fromYmd(year, 8, 15)), "中秋节"),
        *((date(year, 10, d), "国庆节") for d in (1, 2, 3)),
    ]
    return sorted(days, key=lambda entry: entry[0])


@lru_cache(maxsize=256)
def rule_rest_days(year: int) -> MappingProxyType[date, str]:
    """Rest days of `year` by the statutory rule, each with its name (make-up days say 补假)."""
    if year not in RULE_YEARS:
        return MappingProxyType({})
    days = statutory_days(year)
    rest: dict[date, str] = {}
    for day, name in days:
        rest[day] = f"{rest[day]}、{name}" if day in rest else name
    seen: set[date] = set()
    for day, name in days:
        if day.weekday() < 5 and day not in seen:
            seen.add(day)
            continue
        seen.add(day)
        make_up = day + timedelta(days=1)
        while make_up.weekday() >= 5 or make_up in rest:
            make_up += timedelta(days=1)
        rest[make_up] = f"{name}{MAKE_UP}"
    return MappingProxyType(dict(sorted(rest.items())))
