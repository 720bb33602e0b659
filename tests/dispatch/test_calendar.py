"""Working time (dispatch.calendar): office hours, China's holidays and 调休, admin overrides.

Holiday facts of published years come from the chinese-calendar package at test time; those of
later years from the statutory rule, checked against known lunar dates.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch import calendar as calendar_module
from dispatch.calendar import CalendarDay, DaySource, WorkCalendar, parse_office_hours
from dispatch.holidays import rule_rest_days, statutory_days
from taxonomy.catalogue import TimeUnit

SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE_HOURS = "08:30-12:00,14:00-17:30"
CALENDAR = WorkCalendar(parse_office_hours(OFFICE_HOURS))
HOUR = 3600.0
DAY = 7 * HOUR  # one office day


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), SHANGHAI)


def package_workday(day: date) -> bool:
    return bool(chinese_calendar.is_workday(day))


def previous_workday(day: date) -> date:
    day -= timedelta(days=1)
    while not package_workday(day):
        day -= timedelta(days=1)
    return day


def next_workday(day: date) -> date:
    day += timedelta(days=1)
    while not package_workday(day):
        day += timedelta(days=1)
    return day


def ordinary_monday(after: date) -> date:
    """First Monday after `after` starting a week (and the next Monday) with no holiday or 调休."""
    day = after + timedelta(days=(7 - after.weekday()) % 7)
    while not all(
        package_workday(day + timedelta(days=n)) == ((day + timedelta(days=n)).weekday() < 5)
        for n in range(8)
    ):
        day += timedelta(days=7)
    return day


MONDAY = ordinary_monday(date(2026, 3, 1))
TUESDAY = MONDAY + timedelta(days=1)
THURSDAY = MONDAY + timedelta(days=3)
FRIDAY = MONDAY + timedelta(days=4)
SATURDAY = MONDAY + timedelta(days=5)
SUNDAY = MONDAY + timedelta(days=6)

TIAOXIU_2026 = [  # 调休: weekend days the State Council made working days
    date(2026, 1, 1) + timedelta(days=n)
    for n in range(365)
    if (date(2026, 1, 1) + timedelta(days=n)).weekday() >= 5
    and package_workday(date(2026, 1, 1) + timedelta(days=n))
]


def holiday_days(name: str, year: int) -> list[date]:
    days = [date(year, 1, 1) + timedelta(days=n) for n in range(366)]
    return [
        d for d in days if d.year == year and chinese_calendar.get_holiday_detail(d) == (True, name)
    ]


# --- parse_office_hours ------------------------------------------------------------------------


def test_parse_office_hours_returns_ordered_intervals() -> None:
    assert parse_office_hours(OFFICE_HOURS) == (
        (time(8, 30), time(12, 0)),
        (time(14, 0), time(17, 30)),
    )


def test_parse_office_hours_tolerates_spaces_and_single_digit_hours() -> None:
    assert parse_office_hours(" 8:30 - 12:00 , 14:00-17:30 ") == parse_office_hours(OFFICE_HOURS)


def test_parse_office_hours_accepts_24_00_as_end_of_day() -> None:
    assert parse_office_hours("00:00-24:00") == ((time(0, 0), time.max),)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "08:30",
        "08:30-12:00;14:00-17:30",
        "8-12",
        "08h30-12h00",
        "08:30-12:00,",
        "25:00-26:00",
        "08:60-09:00",
        "24:00-24:00",
    ],
)
def test_parse_office_hours_rejects_malformed_intervals(spec: str) -> None:
    with pytest.raises(ValueError, match="office"):
        parse_office_hours(spec)


def test_parse_office_hours_rejects_times_past_midnight() -> None:
    with pytest.raises(ValueError, match="hour"):
        parse_office_hours("08:00-24:30")


@pytest.mark.parametrize("spec", ["12:00-08:30", "09:00-09:00", "08:30-12:00,17:30-14:00"])
def test_parse_office_hours_rejects_reversed_or_empty_intervals(spec: str) -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_office_hours(spec)


@pytest.mark.parametrize(
    "spec", ["08:30-12:00,11:00-17:30", "14:00-17:30,08:30-12:00", "08:00-18:00,09:00-10:00"]
)
def test_parse_office_hours_rejects_overlapping_or_unordered_intervals(spec: str) -> None:
    with pytest.raises(ValueError, match="ordered and not overlap"):
        parse_office_hours(spec)


# --- working hours on ordinary days -----------------------------------------------------------


def test_office_day_is_seven_hours() -> None:
    assert CALENDAR.seconds_per_day == DAY


def test_four_working_hours_from_tuesday_ten_skip_lunch_and_end_at_sixteen() -> None:
    due = CALENDAR.add(local(TUESDAY, 10), 4, TimeUnit.WORKING_HOURS)
    assert due == local(TUESDAY, 16)


def test_deadlines_are_returned_in_utc() -> None:
    due = CALENDAR.add(local(TUESDAY, 10), 4, TimeUnit.WORKING_HOURS)
    assert due.tzinfo is UTC
    assert due == datetime.combine(TUESDAY, time(8, 0), UTC)


def test_working_hours_left_on_friday_carry_over_to_next_working_day() -> None:
    # Friday 11:00-12:00 and 14:00-17:30 give 4.5 h; 1.5 h remain for the next working day.
    due = CALENDAR.add(local(FRIDAY, 11), 6, TimeUnit.WORKING_HOURS)
    assert due == local(next_workday(FRIDAY), 10)
    assert next_workday(FRIDAY) == MONDAY + timedelta(days=7)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (local(TUESDAY, 7), 1.0, local(TUESDAY, 9, 30)),  # before office hours
        (local(TUESDAY, 0), 4.0, local(TUESDAY, 14, 30)),  # midnight
        (local(TUESDAY, 12, 30), 1.0, local(TUESDAY, 15)),  # at lunch
        (local(TUESDAY, 12), 0.5, local(TUESDAY, 14, 30)),  # the instant lunch starts
        (local(TUESDAY, 18), 1.0, local(TUESDAY + timedelta(days=1), 9, 30)),  # after hours
        (local(FRIDAY, 20), 2.0, local(MONDAY + timedelta(days=7), 10, 30)),  # Friday night
        (local(SATURDAY, 10), 1.0, local(MONDAY + timedelta(days=7), 9, 30)),  # weekend
    ],
)
def test_clock_started_outside_office_hours_runs_from_next_office_period(
    start: datetime, hours: float, expected: datetime
) -> None:
    assert CALENDAR.add(start, hours, TimeUnit.WORKING_HOURS) == expected


def test_clock_started_in_utc_counts_local_office_hours() -> None:
    start = datetime.combine(TUESDAY, time(2, 0), UTC)  # 10:00 in Shanghai
    assert CALENDAR.add(start, 4, TimeUnit.WORKING_HOURS) == local(TUESDAY, 16)


def test_adding_negative_working_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        CALENDAR.add_working_seconds(local(TUESDAY, 10), -1.0)


# --- working days ------------------------------------------------------------------------------


def test_three_working_days_from_monday_ten_end_thursday_ten() -> None:
    assert CALENDAR.add(local(MONDAY, 10), 3, TimeUnit.WORKING_DAYS) == local(THURSDAY, 10)


def test_working_day_from_friday_afternoon_ends_next_working_afternoon() -> None:
    due = CALENDAR.add(local(FRIDAY, 15), 1, TimeUnit.WORKING_DAYS)
    assert due == local(MONDAY + timedelta(days=7), 15)


def test_working_days_count_seven_office_hours_each() -> None:
    assert CALENDAR.seconds_for(3, TimeUnit.WORKING_DAYS) == 3 * DAY
    assert CALENDAR.seconds_for(3, TimeUnit.WORKING_HOURS) == 3 * HOUR


# --- natural hours -----------------------------------------------------------------------------


def test_natural_hours_ignore_office_hours_and_weekends() -> None:
    start = local(SATURDAY, 23)
    assert CALENDAR.add(start, 5, TimeUnit.NATURAL_HOURS) == local(SUNDAY, 4)


def test_natural_hours_ignore_holidays() -> None:
    first = holiday_days("National Day", 2026)[0]
    start = local(first, 1)
    assert CALENDAR.add(start, 2.5, TimeUnit.NATURAL_HOURS) == local(first, 3, 30)
    assert CALENDAR.seconds_between(start, local(first, 5), TimeUnit.NATURAL_HOURS) == 4 * HOUR


# --- holidays and 调休 from the package --------------------------------------------------------


@pytest.mark.parametrize("name", ["Spring Festival", "Mid-autumn Festival", "National Day"])
def test_deadline_from_17_00_before_a_2026_holiday_lands_after_it(name: str) -> None:
    days = holiday_days(name, 2026)
    assert days, f"chinese-calendar knows no 2026 {name}"
    before = previous_workday(days[0])
    after = next_workday(days[-1])
    assert (after - before).days >= 3  # a real break, longer than any ordinary night
    due = CALENDAR.add(local(before, 17), 1, TimeUnit.WORKING_HOURS)
    assert due == local(after, 9)
    for n in range(1, (after - before).days):
        assert not CALENDAR.is_workday(before + timedelta(days=n))


def test_national_day_2026_break_lasts_until_october_8() -> None:
    last = previous_workday(date(2026, 10, 1))
    assert CALENDAR.add(local(last, 17), 1, TimeUnit.WORKING_HOURS) == local(
        next_workday(date(2026, 10, 1)), 9
    )
    assert next_workday(date(2026, 10, 1)) == date(2026, 10, 8)


def test_clock_started_during_a_holiday_waits_for_its_end() -> None:
    day = holiday_days("National Day", 2026)[2]
    due = CALENDAR.add(local(day, 10), 1, TimeUnit.WORKING_HOURS)
    assert due == local(next_workday(day), 9, 30)


def test_2026_has_tiaoxiu_weekend_working_days() -> None:
    assert TIAOXIU_2026
    assert any(d.month == 2 for d in TIAOXIU_2026)  # around the Spring Festival


@pytest.mark.parametrize("day", TIAOXIU_2026, ids=str)
def test_tiaoxiu_weekend_day_is_a_working_day(day: date) -> None:
    assert day.weekday() >= 5
    assert CALENDAR.is_workday(day)


@pytest.mark.parametrize("day", TIAOXIU_2026, ids=str)
def test_deadline_crossing_a_tiaoxiu_day_lands_on_it(day: date) -> None:
    before = previous_workday(day)
    assert CALENDAR.add(local(before, 17), 1, TimeUnit.WORKING_HOURS) == local(day, 9)
    assert CALENDAR.add(local(before, 17), 5, TimeUnit.WORKING_HOURS) == local(day, 15)


def test_spring_festival_2026_tiaoxiu_saturday_counts_a_full_office_day() -> None:
    saturday = next(d for d in TIAOXIU_2026 if d.month == 2 and d.weekday() == 5)
    friday = saturday - timedelta(days=1)
    assert package_workday(friday)
    between = CALENDAR.working_seconds_between(local(friday, 17, 30), local(saturday, 23))
    assert between == DAY


# --- overrides ----------------------------------------------------------------------------------


def test_override_turns_a_package_workday_into_a_holiday() -> None:
    calendar = WorkCalendar(CALENDAR.office_hours, overrides={TUESDAY: False})
    assert package_workday(TUESDAY)
    assert not calendar.is_workday(TUESDAY)
    due = calendar.add(local(MONDAY, 17), 1, TimeUnit.WORKING_HOURS)
    assert due == local(TUESDAY + timedelta(days=1), 9)


def test_override_turns_a_sunday_into_a_workday() -> None:
    calendar = WorkCalendar(CALENDAR.office_hours, overrides={SUNDAY: True})
    assert not package_workday(SUNDAY)
    assert calendar.is_workday(SUNDAY)
    assert not calendar.is_workday(SATURDAY)
    assert calendar.add(local(FRIDAY, 17), 1, TimeUnit.WORKING_HOURS) == local(SUNDAY, 9)


def test_override_beats_package_holiday_and_tiaoxiu() -> None:
    national_day = holiday_days("National Day", 2026)[0]
    tiaoxiu = TIAOXIU_2026[0]
    calendar = WorkCalendar(CALENDAR.office_hours, overrides={national_day: True, tiaoxiu: False})
    assert calendar.is_workday(national_day)
    assert not calendar.is_workday(tiaoxiu)


# --- years the package does not know: statutory holidays by rule -------------------------------

STATUTORY_DAYS_PER_YEAR = 13  # 元旦 1, 春节 4, 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3


def test_package_has_no_2027_data() -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 4))


@pytest.mark.parametrize(
    "day", [date(2027, 1, 1), date(2027, 2, 5), date(2027, 2, 8), date(2027, 10, 1)], ids=str
)
def test_2027_statutory_holidays_are_rest_days_by_rule(day: date) -> None:
    assert day.weekday() < 5  # weekdays: only the rule makes them rest days
    assert CALENDAR.day(day) == CalendarDay(day, False, DaySource.RULE, rule_rest_days(2027)[day])
    assert not CALENDAR.is_workday(day)


@pytest.mark.parametrize(
    ("year", "name", "expected"),
    [
        (2027, "春节", [date(2027, 2, 5), date(2027, 2, 6), date(2027, 2, 7), date(2027, 2, 8)]),
        (
            2028,
            "春节",
            [date(2028, 1, 25), date(2028, 1, 26), date(2028, 1, 27), date(2028, 1, 28)],
        ),
        (2027, "清明节", [date(2027, 4, 5)]),
        (2028, "清明节", [date(2028, 4, 4)]),
        (2027, "端午节", [date(2027, 6, 9)]),
        (2028, "端午节", [date(2028, 5, 28)]),
        (2027, "中秋节", [date(2027, 9, 15)]),
        (2028, "中秋节", [date(2028, 10, 3)]),
    ],
)
def test_lunar_holidays_fall_on_their_known_dates(
    year: int, name: str, expected: list[date]
) -> None:
    """除夕 to 初三 (正月初一: 2027-02-06, 2028-01-26), 清明, 五月初五, 八月十五."""
    assert [d for d, n in statutory_days(year) if n == name] == expected


@pytest.mark.parametrize("year", [2025, 2026])
def test_rule_rest_days_are_rest_days_in_the_published_schedules(year: int) -> None:
    """The rule in force since 2025 gives no rest day that the State Council did not give."""
    rule = rule_rest_days(year)
    assert len(rule) >= STATUTORY_DAYS_PER_YEAR
    assert [d for d in rule if package_workday(d)] == []


def test_statutory_day_on_a_weekend_gives_the_next_free_weekday_off() -> None:
    """补假 (article 6): 2027's 劳动节 is Sat-Sun, 春节 and 国庆 each have a weekend in them."""
    rule = rule_rest_days(2027)
    assert [rule.get(date(2027, 5, d)) for d in range(1, 6)] == [
        "劳动节",
        "劳动节",
        "劳动节补假",
        "劳动节补假",
        None,
    ]
    assert [d.day for d in rule if d.month == 2] == [5, 6, 7, 8, 9, 10]
    assert [d.day for d in rule if d.month == 10] == [1, 2, 3, 4, 5]
    for day in (date(2027, 2, 9), date(2027, 2, 10), date(2027, 5, 3), date(2027, 10, 5)):
        assert CALENDAR.day(day).source is DaySource.RULE
    assert CALENDAR.day(date(2027, 2, 11)) == CalendarDay(
        date(2027, 2, 11), True, DaySource.WEEKDAY
    )


def test_two_holidays_on_one_day_give_two_days_off() -> None:
    """2028: 中秋 is 3 October, a 国庆 day; 1 October is a Sunday."""
    rule = rule_rest_days(2028)
    assert rule[date(2028, 10, 3)] == "中秋节、国庆节"
    assert [d.day for d in rule if d.month == 10] == [1, 2, 3, 4, 5]
    assert CALENDAR.is_workday(date(2028, 10, 6))


@settings(max_examples=60, deadline=None)
@given(year=st.integers(min_value=2027, max_value=2099))
def test_every_statutory_day_gives_exactly_one_weekday_off(year: int) -> None:
    rule = rule_rest_days(year)
    assert {d for d, _ in statutory_days(year)} <= set(rule)
    assert sum(d.weekday() < 5 for d in rule) == STATUTORY_DAYS_PER_YEAR
    assert all(d.year == year for d in rule)


def test_ordinary_days_of_an_unpublished_year_are_weekday_or_weekend() -> None:
    week = [date(2027, 3, 1) + timedelta(days=n) for n in range(7)]  # Monday to Sunday
    assert [CALENDAR.day(d).source for d in week] == [DaySource.WEEKDAY] * 5 + [
        DaySource.WEEKEND
    ] * 2
    assert [CALENDAR.is_workday(d) for d in week] == [True] * 5 + [False] * 2


def test_dates_of_a_published_year_keep_source_official() -> None:
    spring = holiday_days("Spring Festival", 2026)[0]
    assert CALENDAR.day(spring).source is DaySource.OFFICIAL
    assert not CALENDAR.day(spring).workday
    assert CALENDAR.day(TIAOXIU_2026[0]).source is DaySource.OFFICIAL
    assert CALENDAR.day(TIAOXIU_2026[0]).workday
    assert CALENDAR.day(TUESDAY) == CalendarDay(TUESDAY, True, DaySource.WEEKDAY)
    assert CALENDAR.day(SUNDAY) == CalendarDay(SUNDAY, False, DaySource.WEEKEND)
    assert CALENDAR.unpublished_years(date(2026, 1, 1), date(2026, 12, 31)) == []


def test_override_wins_over_rule_and_schedule_and_says_override() -> None:
    national_day = holiday_days("National Day", 2026)[0]
    calendar = WorkCalendar(
        CALENDAR.office_hours,
        overrides={date(2027, 1, 1): True, national_day: True, TUESDAY: False},
        notes={TUESDAY: "台风停工"},
    )
    assert calendar.day(date(2027, 1, 1)) == CalendarDay(date(2027, 1, 1), True, DaySource.OVERRIDE)
    assert calendar.day(national_day).source is DaySource.OVERRIDE
    assert calendar.day(TUESDAY) == CalendarDay(TUESDAY, False, DaySource.OVERRIDE, "台风停工")


def test_imported_schedule_replaces_the_rule_for_its_year() -> None:
    calendar = WorkCalendar(
        CALENDAR.office_hours,
        official={date(2027, 1, 1): False, date(2027, 2, 20): True},
        published_years=frozenset({2027}),
    )
    assert calendar.day(date(2027, 1, 1)).source is DaySource.OFFICIAL
    assert calendar.day(date(2027, 2, 20)) == CalendarDay(
        date(2027, 2, 20), True, DaySource.OFFICIAL
    )
    # A make-up day of the rule is an ordinary weekday once the real notice is in.
    assert calendar.day(date(2027, 2, 9)) == CalendarDay(date(2027, 2, 9), True, DaySource.WEEKDAY)
    assert calendar.unpublished_years(date(2026, 12, 1), date(2027, 12, 31)) == []
    assert CALENDAR.unpublished_years(date(2026, 12, 1), date(2028, 1, 5)) == [2027, 2028]


def test_unpublished_year_is_logged_once_per_process(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a fresh process, whatever other tests resolved before.
    monkeypatch.setattr(calendar_module, "_warned_years", set())
    year = 2031
    with caplog.at_level(logging.WARNING, logger="gridgov.calendar"):
        for n in range(40):
            CALENDAR.is_workday(date(year, 1, 1) + timedelta(days=n))
    warnings = [r for r in caplog.records if str(year) in r.getMessage()]
    assert len(warnings) == 1
    assert "no published holiday schedule" in warnings[0].getMessage()


def test_deadline_from_2026_12_31_skips_new_year_2027_and_the_weekend() -> None:
    start = local(date(2026, 12, 31), 17)  # Thursday; 2027-01-01 is a Friday
    assert package_workday(date(2026, 12, 31))
    assert CALENDAR.add(start, 1, TimeUnit.WORKING_HOURS) == local(date(2027, 1, 4), 9)
    assert CALENDAR.add(start, 1, TimeUnit.WORKING_DAYS) == local(date(2027, 1, 4), 17)


def test_override_applies_in_a_year_the_package_does_not_know() -> None:
    wednesday = date(2027, 3, 3)
    start = local(date(2027, 3, 2), 17)
    assert CALENDAR.add(start, 1, TimeUnit.WORKING_HOURS) == local(wednesday, 9)
    calendar = WorkCalendar(CALENDAR.office_hours, overrides={wednesday: False})
    assert not calendar.is_workday(wednesday)
    assert calendar.add(start, 1, TimeUnit.WORKING_HOURS) == local(date(2027, 3, 4), 9)


# --- measuring elapsed working time -------------------------------------------------------------


def test_working_seconds_between_a_full_office_day_is_seven_hours() -> None:
    assert CALENDAR.working_seconds_between(local(TUESDAY, 0), local(TUESDAY, 23)) == DAY


def test_working_seconds_over_a_weekend_are_zero() -> None:
    start = local(FRIDAY, 17, 30)
    assert CALENDAR.working_seconds_between(start, local(MONDAY + timedelta(days=7), 8)) == 0.0


def test_working_seconds_between_is_negative_when_end_precedes_start() -> None:
    a, b = local(TUESDAY, 10), local(THURSDAY, 15)
    assert CALENDAR.working_seconds_between(b, a) == -CALENDAR.working_seconds_between(a, b)
    # Tuesday 10:00-17:30 is 5.5 h, Wednesday 7 h, Thursday 08:30-15:00 is 4.5 h.
    assert CALENDAR.working_seconds_between(a, b) == 17 * HOUR


START = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 12, 31, 23, 59),  # 2027: holidays by rule
    timezones=st.just(UTC),
)


@settings(max_examples=150, deadline=None)
@given(start=START, seconds=st.floats(min_value=0.0, max_value=40 * DAY))
def test_working_seconds_between_inverts_add_working_seconds(
    start: datetime, seconds: float
) -> None:
    end = CALENDAR.add_working_seconds(start, seconds)
    assert end >= start
    assert CALENDAR.working_seconds_between(start, end) == pytest.approx(seconds, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(start=START, seconds=st.floats(min_value=0.0, max_value=10 * DAY))
def test_adding_working_time_lands_inside_office_hours_on_a_workday(
    start: datetime, seconds: float
) -> None:
    end = CALENDAR.add_working_seconds(start, seconds).astimezone(SHANGHAI)
    assert CALENDAR.is_workday(end.date())
    assert any(a <= end.time() <= b for a, b in CALENDAR.office_hours)


def test_round_the_clock_office_day_counts_a_full_24_hours() -> None:
    calendar = WorkCalendar(parse_office_hours("00:00-24:00"))
    start = local(TUESDAY, 0)
    assert calendar.seconds_per_day == 24 * HOUR
    assert calendar.working_seconds_between(start, local(THURSDAY, 0)) == 48 * HOUR
    assert calendar.add(start, 24, TimeUnit.WORKING_HOURS) == local(TUESDAY + timedelta(days=1), 0)
