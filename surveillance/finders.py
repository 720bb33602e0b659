"""From a scan target's cases to findings: the space-time scan's clusters (surveillance.spacetime)
and the grids' spikes (surveillance.baseline), placed and timed as warnings need them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from surveillance import baseline, spacetime
from surveillance.alerts import Finding
from surveillance.models import WarningKind

# Spikes: the grid's reports in the last 24 hours against the 8 weeks before.
SPIKE_BASELINE_DAYS = 56
SPIKE_MIN_COUNT = 4


@dataclass
class ScanContext:
    """What every target of one scan shares: the instant, the zone, the calendar, the settings,
    the places (and their neighbours, built once per radius)."""

    now: datetime
    tz: ZoneInfo
    is_workday: Callable[[date], bool]
    replications: int
    seed: int
    grid_radius_m: npt.NDArray[np.float64]
    _neighbours: dict[tuple[float, int], spacetime.Neighbours] = field(default_factory=dict)

    def neighbours(self, xy_m: npt.NDArray[np.float64], radius_m: float) -> spacetime.Neighbours:
        key = (radius_m, len(xy_m))
        found = self._neighbours.get(key)
        if found is None:
            found = self._neighbours[key] = spacetime.Neighbours.within(xy_m, radius_m)
        return found


class Target(Protocol):
    """What finders read of a scan target (surveillance.runner.Target)."""

    @property
    def category_code(self) -> str: ...

    @property
    def subcategory_code(self) -> str | None: ...

    @property
    def max_radius_m(self) -> float: ...

    @property
    def max_window_days(self) -> int: ...

    @property
    def min_recurrence_days(self) -> float: ...


class Cases(Protocol):
    """What finders read of the scan's cases (surveillance.runner.CaseSet)."""

    @property
    def first_day(self) -> date: ...

    @property
    def scan_day(self) -> int: ...

    @property
    def grid_codes(self) -> list[str]: ...

    @property
    def xy_m(self) -> npt.NDArray[np.float64]: ...

    @property
    def lat(self) -> npt.NDArray[np.float64]: ...

    @property
    def lng(self) -> npt.NDArray[np.float64]: ...

    @property
    def ids(self) -> npt.NDArray[np.int64]: ...

    @property
    def grid(self) -> npt.NDArray[np.int64]: ...

    @property
    def day(self) -> npt.NDArray[np.int64]: ...

    @property
    def reported(self) -> npt.NDArray[np.float64]: ...

    @property
    def category(self) -> npt.NDArray[np.str_]: ...

    @property
    def subcategory(self) -> npt.NDArray[np.str_]: ...


def _of_target(cases: Cases, target: Target) -> npt.NDArray[np.bool_]:
    if target.subcategory_code is not None:
        return np.asarray(cases.subcategory == target.subcategory_code)
    return np.asarray(cases.category == target.category_code)


def _day_start(cases: Cases, day: int, tz: ZoneInfo) -> datetime:
    local = datetime.combine(cases.first_day + timedelta(days=day), datetime.min.time(), tz)
    return local.astimezone(ZoneInfo("UTC"))


def clusters(cases: Cases, target: Target, ctx: ScanContext) -> list[Finding]:
    """The target's space-time clusters alive on the scan day, strong enough to warn."""
    mine = _of_target(cases, target)
    if not mine.any():
        return []
    scan = spacetime.Scan(
        cases.grid[mine],
        cases.day[mine],
        n_locations=len(cases.grid_codes),
        neighbours=ctx.neighbours(cases.xy_m, target.max_radius_m),
        scan_day=cases.scan_day,
        max_window_days=target.max_window_days,
    )
    found = scan.clusters(
        replications=ctx.replications,
        seed=ctx.seed,
        max_p=1.0 / target.min_recurrence_days,
    )
    out = []
    ids, grid, day = cases.ids[mine], cases.grid[mine], cases.day[mine]
    for c in found:
        first = cases.scan_day - c.window_days + 1
        inside = np.isin(grid, c.locations) & (day >= first)
        # The warning belongs to the grid holding most of its cases (the circle's centre may be
        # a neighbour across a village or town line).
        home = int(np.bincount(grid[inside]).argmax()) if inside.any() else c.centre
        out.append(
            Finding(
                kind=WarningKind.CLUSTER,
                category_code=target.category_code,
                subcategory_code=target.subcategory_code,
                area_code=cases.grid_codes[home],
                center_lat=float(cases.lat[c.centre]),
                center_lng=float(cases.lng[c.centre]),
                radius_m=round(c.radius_m + float(ctx.grid_radius_m[c.centre]), 1),
                window_start=_day_start(cases, first, ctx.tz),
                window_end=min(ctx.now, _day_start(cases, cases.scan_day + 1, ctx.tz)),
                observed=c.observed,
                expected=round(c.expected, 4),
                p_value=c.p_value,
                recurrence_days=round(c.recurrence_days, 1),
                case_ids=tuple(int(i) for i in sorted(ids[inside])),
            )
        )
    return out


def spikes(cases: Cases, target: Target, ctx: ScanContext) -> list[Finding]:
    """The grids whose last 24 hours of the target's reports are a spike."""
    mine = _of_target(cases, target)
    now_s = ctx.now.timestamp()
    window_start = now_s - 86_400.0
    recent = mine & (cases.reported > window_start) & (cases.reported <= now_s)
    if recent.sum() < SPIKE_MIN_COUNT:
        return []
    base_start = window_start - SPIKE_BASELINE_DAYS * 86_400.0
    history = mine & (cases.reported > base_start) & (cases.reported <= window_start)
    today = ctx.now.astimezone(ctx.tz).date()
    days = [today - timedelta(days=SPIKE_BASELINE_DAYS - i) for i in range(SPIKE_BASELINE_DAYS)]
    first = (days[0] - cases.first_day).days
    per_day = np.bincount(
        np.clip(cases.day[history] - first, 0, SPIKE_BASELINE_DAYS - 1),
        minlength=SPIKE_BASELINE_DAYS,
    ).astype(np.float64)
    working = np.array([ctx.is_workday(d) for d in days])
    factor = baseline.day_type_factor(per_day, working, ctx.is_workday(today))
    found = baseline.spikes(
        cases.grid[recent],
        cases.grid[history],
        n_locations=len(cases.grid_codes),
        baseline_days=SPIKE_BASELINE_DAYS,
        factor=factor,
        min_count=SPIKE_MIN_COUNT,
        min_recurrence_days=target.min_recurrence_days,
    )
    ids, grid = cases.ids[recent], cases.grid[recent]
    return [
        Finding(
            kind=WarningKind.SPIKE,
            category_code=target.category_code,
            subcategory_code=target.subcategory_code,
            area_code=cases.grid_codes[s.location],
            center_lat=float(cases.lat[s.location]),
            center_lng=float(cases.lng[s.location]),
            radius_m=round(float(ctx.grid_radius_m[s.location]), 1),
            window_start=ctx.now - timedelta(days=1),
            window_end=ctx.now,
            observed=s.observed,
            expected=round(s.expected, 4),
            p_value=s.p_value,
            recurrence_days=round(s.recurrence_days, 1),
            case_ids=tuple(int(i) for i in sorted(ids[grid == s.location])),
        )
        for s in found
    ]
