"""Time-limit rules: when a case turns yellow (黄牌), red (红牌) and climbs the hierarchy (督办).

Thresholds are instants on the case's clock: yellow at `warn_fraction` of the limit, red at the
limit (escalation level 1: the village/community), then one level more for each further
`escalate_every_fraction` of the limit (2: the town/street, 3: the district command centre).
The sweep stores the next threshold in `next_check_at`, so it only ever reads due cases. The
yellow and red instants themselves are set on the case by `dispatch.clock.set_deadlines`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dispatch.calendar import WorkCalendar
from dispatch.models import WarningLevel
from taxonomy.catalogue import TimeUnit

MAX_ESCALATION_LEVEL = 3
# How many digits of the grid code name the area an escalation reaches: 1 the village (村居),
# 2 the town (镇街), 3 the district (区指挥中心).
ESCALATION_AREA_DIGITS = {1: 12, 2: 9, 3: 6}


def escalation_area(grid_code: str, level: int) -> str | None:
    """The area code an escalation of this level reaches for a case in this grid (None: none)."""
    digits = ESCALATION_AREA_DIGITS.get(level)
    return None if digits is None else grid_code[:digits]


@dataclass(frozen=True)
class SlaState:
    warning_level: WarningLevel
    escalation_level: int
    next_check_at: datetime | None


def thresholds(
    *,
    warn_at: datetime,
    due_at: datetime,
    amount: float,
    unit: TimeUnit,
    calendar: WorkCalendar,
    escalate_every_fraction: float,
) -> list[tuple[datetime, WarningLevel, int]]:
    """Every SLA instant of a case in time order, with the state it leads to."""
    steps = [(warn_at, WarningLevel.YELLOW, 0), (due_at, WarningLevel.RED, 1)]
    for level in range(2, MAX_ESCALATION_LEVEL + 1):
        at = calendar.add(due_at, amount * escalate_every_fraction * (level - 1), unit)
        steps.append((at, WarningLevel.RED, level))
    return steps


def evaluate(
    *,
    now: datetime,
    warn_at: datetime,
    due_at: datetime,
    amount: float,
    unit: TimeUnit,
    calendar: WorkCalendar,
    escalate_every_fraction: float,
) -> SlaState:
    """The SLA state at `now` and when it next changes."""
    state = SlaState(WarningLevel.NONE, 0, None)
    for at, level, escalation in thresholds(
        warn_at=warn_at,
        due_at=due_at,
        amount=amount,
        unit=unit,
        calendar=calendar,
        escalate_every_fraction=escalate_every_fraction,
    ):
        if at <= now:
            state = SlaState(level, escalation, None)
        else:
            return SlaState(state.warning_level, state.escalation_level, at)
    return state
