"""Spikes (激增): one grid's reports of one category over the last 24 hours against the grid's
own history.

The baseline is the grid's count over the `baseline_days` before the window (plus one half, so
a grid that never had such a report still expects a little), per day, times the district's
day-type factor: how many reports of the category a day of today's kind (working day, or
weekend/holiday, from the working calendar) brings compared with the average day of the
baseline. The count is Poisson around that; the p-value is its upper tail. A spike needs at
least `min_count` reports; its recurrence interval counts every grid the check looks at, every
hour (the check runs hourly): 1 / (p x grids x 24) days, and it is a warning above the
configured interval. This is the EARS idea (a recent count against the place's own recent
history) with a Poisson tail instead of a normal one, which counts of a few a day need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

CHECKS_PER_DAY = 24
PRIOR_CASES = 0.5


@dataclass(frozen=True)
class Spike:
    location: int
    observed: int
    expected: float
    p_value: float
    recurrence_days: float


def poisson_tail(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam), summed from k up (exact where it is tiny)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if k <= lam:  # not in the tail: 1 - P(X < k)
        term = math.exp(-lam)
        below = term
        for i in range(1, k):
            term *= lam / i
            below += term
        return max(0.0, 1.0 - below)
    log_term = k * math.log(lam) - lam - math.lgamma(k + 1)
    term, total, i = math.exp(log_term), 0.0, k
    while term > total * 1e-15 and i < k + 10_000:
        total += term
        i += 1
        term *= lam / i
    return min(1.0, total)


def day_type_factor(
    per_day: npt.NDArray[np.float64], working: npt.NDArray[np.bool_], today_working: bool
) -> float:
    """How many reports a day of today's kind brings against the average baseline day (1.0
    when the baseline has none of that kind, or no reports)."""
    mean = float(per_day.mean()) if len(per_day) else 0.0
    same = per_day[working == today_working]
    if mean <= 0 or len(same) == 0:
        return 1.0
    return float(same.mean()) / mean


def spikes(
    recent_location: npt.NDArray[np.int64],
    baseline_location: npt.NDArray[np.int64],
    *,
    n_locations: int,
    baseline_days: int,
    factor: float,
    min_count: int = 4,
    min_recurrence_days: float = 365.0,
) -> list[Spike]:
    """The grids whose count in the window (`recent_location`: a case's grid each) is a spike
    against their baseline (`baseline_location`, over `baseline_days`), strongest first."""
    recent = np.bincount(recent_location, minlength=n_locations)
    if not recent.size or recent.max() < min_count:
        return []
    history = np.bincount(baseline_location, minlength=n_locations).astype(np.float64)
    expected = (history + PRIOR_CASES) / max(1, baseline_days) * factor
    out = []
    for location in np.flatnonzero(recent >= min_count):
        observed = int(recent[location])
        p = poisson_tail(observed, float(expected[location]))
        recurrence = math.inf if p == 0 else 1.0 / (p * n_locations * CHECKS_PER_DAY)
        if recurrence >= min_recurrence_days:
            out.append(
                Spike(
                    location=int(location),
                    observed=observed,
                    expected=float(expected[location]),
                    p_value=max(p, 1e-300),
                    recurrence_days=min(recurrence, 1e12),
                )
            )
    return sorted(out, key=lambda s: s.p_value)
