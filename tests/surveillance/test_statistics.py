"""The scan statistic and the spike check against hand-computed values, and on synthetic data
with a fixed seed: a planted cluster is found, a uniform background is not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from surveillance import baseline, spacetime
from surveillance.spacetime import Neighbours, Scan


def _line(n: int, step_m: float = 100.0) -> np.ndarray:
    return np.column_stack((np.arange(n) * step_m, np.zeros(n)))


def test_llr_by_hand() -> None:
    """c = 6 against mu = 1 among N = 100: 6 ln 6 + 94 ln(94 / 99)."""
    want = 6 * math.log(6) + 94 * math.log(94 / 99)
    got = spacetime.llr(np.array([6.0, 1.0, 0.5]), np.array([1.0, 1.0, 1.0]), 100.0)
    assert got[0] == pytest.approx(want, rel=1e-12)
    assert list(got[1:]) == [0.0, 0.0]  # not above expectation


def test_tiny_scan_expected_and_observed_by_hand() -> None:
    """Three places 100 m apart; 10 days. Place 0: 4 cases on the last day and 1 on day 0;
    place 2: 5 cases, one a day on days 0-4. N = 10, N_place0 = 5, cases on the last day = 4.
    The circle {0} over the last day: mu = 5 * 4 / 10 = 2, c = 4."""
    location = np.array([0, 0, 0, 0, 0, 2, 2, 2, 2, 2])
    day = np.array([9, 9, 9, 9, 0, 0, 1, 2, 3, 4])
    scan = Scan(
        location,
        day,
        n_locations=3,
        neighbours=Neighbours.within(_line(3), 150.0),
        scan_day=9,
        max_window_days=3,
        min_cases=3,
    )
    [best] = scan.clusters(replications=99, seed=1)
    assert (best.centre, best.locations, best.window_days) == (0, (0,), 1)
    assert (best.observed, best.expected) == (4, pytest.approx(2.0))
    assert best.llr == pytest.approx(4 * math.log(2) + 6 * math.log(6 / 8))
    assert best.radius_m == 0.0
    assert 0 < best.p_value <= 1
    assert best.recurrence_days == pytest.approx(1 / best.p_value)


def _background(
    rng: np.random.Generator, n: int, places: int, days: int
) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, places, n), rng.integers(0, days, n)


def _grid(side: int, step_m: float = 400.0) -> np.ndarray:
    x, y = np.meshgrid(np.arange(side) * step_m, np.arange(side) * step_m)
    return np.column_stack((x.ravel(), y.ravel()))


def test_a_planted_cluster_is_found_and_a_uniform_background_is_not() -> None:
    rng = np.random.default_rng(7)
    xy = _grid(20)  # 400 places, 400 m apart
    neighbours = Neighbours.within(xy, 1000.0)
    location, day = _background(rng, 3000, len(xy), 365)
    quiet = Scan(
        location, day, n_locations=len(xy), neighbours=neighbours, scan_day=364, max_window_days=14
    )
    assert quiet.clusters(replications=199, seed=3, max_p=0.01) == []
    # 8 reports over the last 4 days in place 210 and its neighbours (within 400 m).
    near = [210, 211, 190, 230]
    planted_loc = np.array([near[i % 4] for i in range(8)])
    planted_day = np.array([361, 362, 362, 363, 363, 364, 364, 364])
    hot = Scan(
        np.concatenate([location, planted_loc]),
        np.concatenate([day, planted_day]),
        n_locations=len(xy),
        neighbours=neighbours,
        scan_day=364,
        max_window_days=14,
    )
    found = hot.clusters(replications=199, seed=3, max_p=0.01)
    assert found, "the planted cluster was not found"
    best = found[0]
    assert set(near) & set(best.locations)
    assert best.observed >= 8
    assert best.window_days <= 7
    assert best.p_value <= 1 / 200
    # Deterministic under the seed.
    again = hot.clusters(replications=199, seed=3, max_p=0.01)
    assert again == found


def test_p_values_from_replications_and_the_gumbel_tail() -> None:
    maxima = np.array([1.0, 2.0, 3.0, 4.0])
    assert spacetime.p_value(2.5, maxima, None) == pytest.approx(3 / 5)
    gumbel = (2.0, 1.0)
    far = spacetime.p_value(20.0, maxima, gumbel)
    assert far == pytest.approx(-math.expm1(-math.exp(-18.0)), rel=1e-6)
    assert far < 1 / 5


def test_poisson_tail_by_hand() -> None:
    # P(X >= 2 | 1) = 1 - e^-1 (1 + 1)
    assert baseline.poisson_tail(2, 1.0) == pytest.approx(1 - 2 * math.exp(-1))
    # P(X >= 4 | 0.1) = sum_{i>=4} e^-0.1 0.1^i / i!
    want = sum(math.exp(-0.1) * 0.1**i / math.factorial(i) for i in range(4, 30))
    assert baseline.poisson_tail(4, 0.1) == pytest.approx(want, rel=1e-12)
    assert baseline.poisson_tail(0, 3.0) == 1.0


def test_day_type_factor() -> None:
    per_day = np.array([10.0, 10.0, 10.0, 10.0, 10.0, 2.0, 2.0])
    working = np.array([True] * 5 + [False] * 2)
    mean = per_day.mean()
    assert baseline.day_type_factor(per_day, working, True) == pytest.approx(10 / mean)
    assert baseline.day_type_factor(per_day, working, False) == pytest.approx(2 / mean)


def test_a_quiet_grid_far_above_its_own_history_is_a_spike_and_a_busy_one_is_not() -> None:
    rng = np.random.default_rng(11)
    history = rng.integers(0, 100, 2800)  # 100 grids, ~28 each over 56 days (0.5 a day)
    history = np.where(history == 3, 4, history)  # grid 3 never had one
    history = np.concatenate([history, np.full(200, 7)])  # grid 7 is busy: ~4 a day
    recent = np.array([3] * 6 + [7] * 5 + [9])
    found = baseline.spikes(
        recent,
        history,
        n_locations=100,
        baseline_days=56,
        factor=1.0,
        min_count=4,
        min_recurrence_days=365,
    )
    assert [s.location for s in found] == [3]
    [spike] = found
    assert spike.observed == 6
    assert spike.expected == pytest.approx((np.sum(history == 3) + 0.5) / 56)
    assert spike.recurrence_days >= 365
