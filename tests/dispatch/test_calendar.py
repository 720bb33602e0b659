"""Working time (dispatch.calendar): office hours, China's holidays and 调休, admin overrides.

Holiday facts come from the chinese-calendar package at test time, never from guesses here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.calendar import WorkCalendar, parse_office_hours
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


# --- years the package does not know ------------------------------------------------------------


def test_package_has_no_2027_data() -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 4))


def test_unknown_year_falls_back_to_monday_to_friday() -> None:
    week = [date(2027, 3, 1) + timedelta(days=n) for n in range(7)]  # Monday to Sunday
    assert [CALENDAR.is_workday(d) for d in week] == [True] * 5 + [False] * 2
    assert CALENDAR.is_workday(date(2027, 1, 1))  # a Friday: no holiday data yet


def test_override_applies_in_a_year_the_package_does_not_know() -> None:
    new_year = date(2027, 1, 1)  # Friday
    assert package_workday(date(2026, 12, 31))
    start = local(date(2026, 12, 31), 17)
    assert CALENDAR.add(start, 1, TimeUnit.WORKING_HOURS) == local(new_year, 9)
    calendar = WorkCalendar(CALENDAR.office_hours, overrides={new_year: False})
    assert not calendar.is_workday(new_year)
    assert calendar.add(start, 1, TimeUnit.WORKING_HOURS) == local(date(2027, 1, 4), 9)


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
    max_value=datetime(2026, 12, 31, 23, 59),
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
