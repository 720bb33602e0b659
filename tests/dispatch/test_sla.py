"""SLA rules (dispatch.sla): yellow card, red card and escalation up the hierarchy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.calendar import WorkCalendar, parse_office_hours
from dispatch.clock import set_deadlines
from dispatch.models import Case, WarningLevel
from dispatch.policy import Policy
from dispatch.sla import MAX_ESCALATION_LEVEL, SlaState, evaluate, thresholds
from taxonomy.catalogue import EscalationStep, TimeUnit, load_default_catalogue

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkCalendar(parse_office_hours("08:30-12:00,14:00-17:30"))
WARN = 0.8
EVERY = 0.5
RANK = {WarningLevel.NONE: 0, WarningLevel.YELLOW: 1, WarningLevel.RED: 2}


def ladder_every(every: float) -> tuple[EscalationStep, ...]:
    """村居 at the deadline, then one level more per `every` of the limit."""
    return tuple(EscalationStep(past_due=every * (level - 1), level=level) for level in (1, 2, 3))


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), SHANGHAI)


def package_workday(day: date) -> bool:
    return bool(chinese_calendar.is_workday(day))


def next_workday(day: date) -> date:
    day += timedelta(days=1)
    while not package_workday(day):
        day += timedelta(days=1)
    return day


def previous_workday(day: date) -> date:
    day -= timedelta(days=1)
    while not package_workday(day):
        day -= timedelta(days=1)
    return day


def ordinary_tuesday(after: date) -> date:
    """A Tuesday whose week has no holiday and no 调休, per the package."""
    day = after + timedelta(days=(1 - after.weekday()) % 7)
    while not all(
        package_workday(day + timedelta(days=n)) == ((day + timedelta(days=n)).weekday() < 5)
        for n in range(-1, 6)
    ):
        day += timedelta(days=7)
    return day


@dataclass(frozen=True)
class Limit:
    start: datetime
    amount: int
    unit: TimeUnit
    expected: tuple[datetime, datetime, datetime, datetime]  # yellow, red (1), level 2, level 3

    def deadlines(self, paused_seconds: float = 0.0) -> tuple[datetime, datetime]:
        case = Case(
            clock_started_at=self.start,
            time_limit_value=self.amount,
            time_limit_unit=self.unit.value,
            paused_seconds=paused_seconds,
        )
        set_deadlines(case, calendar=CALENDAR, policy=Policy(audit_key="", warn_fraction=WARN))
        assert case.warn_at is not None
        assert case.due_at is not None
        return case.warn_at, case.due_at

    def evaluate(self, now: datetime, every: float = EVERY) -> SlaState:
        warn_at, due_at = self.deadlines()
        return evaluate(
            now=now,
            warn_at=warn_at,
            due_at=due_at,
            amount=self.amount,
            unit=self.unit,
            calendar=CALENDAR,
            ladder=ladder_every(every),
        )

    def thresholds(self, every: float = EVERY) -> list[tuple[datetime, WarningLevel, int]]:
        warn_at, due_at = self.deadlines()
        return list(
            thresholds(
                warn_at=warn_at,
                due_at=due_at,
                amount=self.amount,
                unit=self.unit,
                calendar=CALENDAR,
                ladder=ladder_every(every),
            )
        )


TUESDAY = ordinary_tuesday(date(2026, 3, 1))
WEDNESDAY = TUESDAY + timedelta(days=1)

# 4 working hours from Tuesday 09:00: yellow after 3.2 h (lunch skipped), red after 4 h,
# level 2 after 2 more working hours, level 3 after 4 more (the next morning).
FOUR_WORKING_HOURS = Limit(
    start=local(TUESDAY, 9),
    amount=4,
    unit=TimeUnit.WORKING_HOURS,
    expected=(local(TUESDAY, 14, 12), local(TUESDAY, 15), local(TUESDAY, 17), local(WEDNESDAY, 10)),
)

# 1 working day (7 h) from 10:00 on the last working day before the 2026 National Day holiday.
EVE = previous_workday(date(2026, 10, 1))
AFTER = next_workday(date(2026, 10, 1))
ONE_WORKING_DAY_OVER_NATIONAL_DAY = Limit(
    start=local(EVE, 10),
    amount=1,
    unit=TimeUnit.WORKING_DAYS,
    expected=(
        local(AFTER, 8, 36),  # 5.5 h on the eve, 0.1 h after the break
        local(AFTER, 10),
        local(AFTER, 15, 30),  # 3.5 h later
        local(next_workday(AFTER), 10),  # 7 h later
    ),
)

# 2 natural hours from Saturday 23:00: no office hours, no weekend.
SATURDAY = TUESDAY + timedelta(days=4)
SUNDAY = SATURDAY + timedelta(days=1)
TWO_NATURAL_HOURS = Limit(
    start=local(SATURDAY, 23),
    amount=2,
    unit=TimeUnit.NATURAL_HOURS,
    expected=(local(SUNDAY, 0, 36), local(SUNDAY, 1), local(SUNDAY, 2), local(SUNDAY, 3)),
)

LIMITS = {
    "four_working_hours": FOUR_WORKING_HOURS,
    "one_working_day_over_national_day": ONE_WORKING_DAY_OVER_NATIONAL_DAY,
    "two_natural_hours": TWO_NATURAL_HOURS,
}


def test_national_day_fixture_spans_the_holiday() -> None:
    assert EVE < date(2026, 10, 1) < AFTER
    assert (AFTER - EVE).days > 3


@pytest.mark.parametrize("limit", LIMITS.values(), ids=LIMITS.keys())
def test_deadlines_put_yellow_at_80_percent_and_red_at_the_limit(limit: Limit) -> None:
    assert limit.deadlines() == limit.expected[:2]


@pytest.mark.parametrize(
    ("limit", "paused_seconds", "expected"),
    [
        # 2 working hours suspended: both instants move 2 office hours later, same afternoon.
        (FOUR_WORKING_HOURS, 7200.0, (local(TUESDAY, 16, 12), local(TUESDAY, 17))),
        # 30 natural minutes suspended: 30 minutes later on the clock.
        (TWO_NATURAL_HOURS, 1800.0, (local(SUNDAY, 1, 6), local(SUNDAY, 1, 30))),
    ],
    ids=["four_working_hours", "two_natural_hours"],
)
def test_deadlines_move_back_by_the_time_suspended(
    limit: Limit, paused_seconds: float, expected: tuple[datetime, datetime]
) -> None:
    assert limit.deadlines(paused_seconds) == expected


@pytest.mark.parametrize("limit", LIMITS.values(), ids=LIMITS.keys())
def test_thresholds_escalate_every_half_limit_in_the_same_kind_of_time(limit: Limit) -> None:
    steps = limit.thresholds()
    assert [at for at, _, _ in steps] == list(limit.expected)
    assert [(level, escalation) for _, level, escalation in steps] == [
        (WarningLevel.YELLOW, 0),
        (WarningLevel.RED, 1),
        (WarningLevel.RED, 2),
        (WarningLevel.RED, 3),
    ]


def test_the_packaged_normal_ladder_is_one_level_per_half_limit() -> None:
    assert load_default_catalogue().escalation.normal == ladder_every(EVERY)


def test_escalation_interval_follows_the_ladder() -> None:
    steps = FOUR_WORKING_HOURS.thresholds(every=1.0)  # one more level per full limit (4 h)
    assert [at for at, _, _ in steps] == [
        local(TUESDAY, 14, 12),
        local(TUESDAY, 15),
        local(WEDNESDAY, 10),  # 2.5 h on Tuesday, 1.5 h on Wednesday
        local(WEDNESDAY, 16),  # 2.5 h on Tuesday, 3.5 h + 2 h on Wednesday
    ]


@pytest.mark.parametrize("limit", LIMITS.values(), ids=LIMITS.keys())
def test_state_before_yellow_is_none_and_waits_for_yellow(limit: Limit) -> None:
    yellow = limit.expected[0]
    for now in (limit.start, yellow - timedelta(microseconds=1)):
        assert limit.evaluate(now) == SlaState(WarningLevel.NONE, 0, yellow)


@pytest.mark.parametrize("limit", LIMITS.values(), ids=LIMITS.keys())
def test_state_at_each_threshold_takes_effect_at_that_instant(limit: Limit) -> None:
    yellow, red, level2, level3 = limit.expected
    assert limit.evaluate(yellow) == SlaState(WarningLevel.YELLOW, 0, red)
    assert limit.evaluate(red - timedelta(seconds=1)) == SlaState(WarningLevel.YELLOW, 0, red)
    assert limit.evaluate(red) == SlaState(WarningLevel.RED, 1, level2)
    assert limit.evaluate(level2 - timedelta(seconds=1)) == SlaState(WarningLevel.RED, 1, level2)
    assert limit.evaluate(level2) == SlaState(WarningLevel.RED, 2, level3)
    assert limit.evaluate(level3) == SlaState(WarningLevel.RED, 3, None)


@pytest.mark.parametrize("limit", LIMITS.values(), ids=LIMITS.keys())
def test_escalation_is_capped_at_level_3_and_then_nothing_is_scheduled(limit: Limit) -> None:
    state = limit.evaluate(limit.start + timedelta(days=400))
    assert MAX_ESCALATION_LEVEL == 3
    assert state == SlaState(WarningLevel.RED, 3, None)


def test_evaluate_accepts_now_in_any_timezone() -> None:
    red_utc = FOUR_WORKING_HOURS.expected[1].astimezone(UTC)
    assert FOUR_WORKING_HOURS.evaluate(red_utc).escalation_level == 1


def test_working_hour_escalation_waits_for_office_hours_unlike_natural_hours() -> None:
    # Level 3 of a 4-working-hour limit from Tuesday 09:00 is Wednesday 10:00, not Tuesday 19:00.
    evening = local(TUESDAY, 19)
    assert FOUR_WORKING_HOURS.evaluate(evening) == SlaState(
        WarningLevel.RED, 2, local(WEDNESDAY, 10)
    )


OFFSETS = st.integers(min_value=-86_400, max_value=30 * 86_400)  # seconds from the start
LIMIT_NAMES = st.sampled_from(sorted(LIMITS))


@settings(max_examples=200, deadline=None)
@given(name=LIMIT_NAMES, offset=OFFSETS)
def test_next_check_is_the_first_threshold_strictly_after_now(name: str, offset: int) -> None:
    limit = LIMITS[name]
    now = limit.start + timedelta(seconds=offset)
    state = limit.evaluate(now)
    later = [at for at in limit.expected if at > now]
    if later:
        assert state.next_check_at == min(later)
        assert state.next_check_at > now
        assert state.escalation_level < MAX_ESCALATION_LEVEL
    else:
        assert state.next_check_at is None
        assert state.escalation_level == MAX_ESCALATION_LEVEL


@settings(max_examples=200, deadline=None)
@given(name=LIMIT_NAMES, a=OFFSETS, b=OFFSETS)
def test_evaluate_is_monotone_in_now(name: str, a: int, b: int) -> None:
    limit = LIMITS[name]
    early, late = sorted((a, b))
    s1 = limit.evaluate(limit.start + timedelta(seconds=early))
    s2 = limit.evaluate(limit.start + timedelta(seconds=late))
    assert s1.escalation_level <= s2.escalation_level <= MAX_ESCALATION_LEVEL
    assert RANK[s1.warning_level] <= RANK[s2.warning_level]


@settings(max_examples=100, deadline=None)
@given(name=LIMIT_NAMES, offset=OFFSETS)
def test_state_does_not_change_before_next_check(name: str, offset: int) -> None:
    limit = LIMITS[name]
    now = limit.start + timedelta(seconds=offset)
    state = limit.evaluate(now)
    if state.next_check_at is not None:
        just_before = limit.evaluate(state.next_check_at - timedelta(microseconds=1))
        assert (just_before.warning_level, just_before.escalation_level) == (
            state.warning_level,
            state.escalation_level,
        )
        at_check = limit.evaluate(state.next_check_at)
        assert (RANK[at_check.warning_level], at_check.escalation_level) > (
            RANK[state.warning_level],
            state.escalation_level,
        )
