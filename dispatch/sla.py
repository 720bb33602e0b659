"""Time-limit rules: when a case turns yellow (黄牌), red (红牌) and climbs the hierarchy (督办).

Thresholds are instants on the case's clock: yellow at `warn_fraction` of the limit, red at the
limit, and the rungs of the case's escalation ladder (the catalogue's, by urgency: e.g. normal
1 村居 at the limit, 2 镇街 half a limit later, 3 district a whole limit later; urgent 镇街 at
once). The sweep stores the next threshold in `next_check_at`, so it only ever reads due cases.
The yellow and red instants themselves are set on the case by `dispatch.clock.set_deadlines`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from dispatch.calendar import WorkCalendar
from dispatch.models import WarningLevel
from taxonomy.catalogue import DISTRICT_LEVEL, EscalationStep, TimeUnit

MAX_ESCALATION_LEVEL = DISTRICT_LEVEL
# Put in a case's SLA events right after a red card (`sla_overdue`, `stage_overdue`) that also
# escalated the case to the 村居: told as `case.escalated`, recorded in the card's own entry.
ESCALATED_WITH_CARD = "escalated_with_card"
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
    ladder: Sequence[EscalationStep],
) -> Iterator[tuple[datetime, WarningLevel, int]]:
    """Every SLA instant of a case in time order, with the state it leads to. A rung at the
    deadline is the red card's own instant (red and that level at once); later rungs are
    counted in the limit's own kind of time, each only when asked for (`evaluate` stops at the
    first one still ahead: a calendar addition is most of a sweep's rule time)."""
    yield warn_at, WarningLevel.YELLOW, 0
    at_due = next((step.level for step in ladder if step.past_due == 0), 0)
    yield due_at, WarningLevel.RED, at_due
    for step in ladder:
        if step.past_due != 0:
            yield calendar.add(due_at, amount * step.past_due, unit), WarningLevel.RED, step.level


def evaluate(
    *,
    now: datetime,
    warn_at: datetime,
    due_at: datetime,
    amount: float,
    unit: TimeUnit,
    calendar: WorkCalendar,
    ladder: Sequence[EscalationStep],
) -> SlaState:
    """The SLA state at `now` and when it next changes."""
    state = SlaState(WarningLevel.NONE, 0, None)
    steps = thresholds(
        warn_at=warn_at, due_at=due_at, amount=amount, unit=unit, calendar=calendar, ladder=ladder
    )
    for at, level, escalation in steps:
        if at <= now:
            state = SlaState(level, escalation, None)
        else:
            return SlaState(state.warning_level, state.escalation_level, at)
    return state
