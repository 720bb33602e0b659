"""The prospective space-time permutation scan statistic (Kulldorff et al. 2005), vectorised.

The cases of one category over a study period, each with its place (a grid centroid) and its
local day. A cylinder is a circle around one centroid holding its k nearest centroids (up to a
radius) and a window of the last w days ending on the scan day (prospective: only clusters still
alive today). With N cases, N_z of them in the circle over the whole period and N_w of them in
the window anywhere, a cylinder expects mu = N_z * N_w / N cases if place and time are
independent (no population needed: each place is its own baseline), and the evidence that it
holds more is the Poisson generalised likelihood ratio

    LLR = c log(c / mu) + (N - c) log((N - c) / (N - mu))      when c > mu, else 0.

The scan takes the cylinder of highest LLR, then more that share no place with it (best first).
How surprising each is: the same scan over R data sets in which the days are shuffled among the
cases (place and time margins kept, any cluster destroyed); p = (1 + replications whose best
LLR reaches it) / (R + 1). A p below what R replications can show comes from a Gumbel law fitted
to the replications' best values, as SaTScan does. For a scan run every day, 1 / p is the
recurrence interval: the number of days one would wait for chance alone to give a warning this
strong.

Every replication is a few array operations on (centres x neighbours x windows): a year of
100,000 cases over 921 grids with 999 replications takes seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

EULER_GAMMA = 0.5772156649015329

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Neighbours:
    """For each centre, its nearest centres within the radius, nearest first (padded with -1),
    and their distances."""

    order: IntArray  # (L, K)
    distance: FloatArray  # (L, K), inf where padded

    @classmethod
    def within(cls, xy_m: FloatArray, max_radius_m: float, max_count: int = 64) -> Neighbours:
        """Neighbours of every point within `max_radius_m` (itself first), at most `max_count`."""
        n = len(xy_m)
        if n == 0:
            return cls(np.zeros((0, 1), np.int64), np.zeros((0, 1)))
        d = np.sqrt(((xy_m[:, None, :] - xy_m[None, :, :]) ** 2).sum(axis=2))
        k = int(min(max_count, n, max(1, (d <= max_radius_m).sum(axis=1).max())))
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        dist = np.take_along_axis(d, order, axis=1)
        far = dist > max_radius_m
        order = np.where(far, -1, order)
        dist = np.where(far, np.inf, dist)
        return cls(order.astype(np.int64), dist)


@dataclass(frozen=True)
class Cluster:
    centre: int  # index of the centre location
    locations: tuple[int, ...]  # the circle's locations
    radius_m: float  # distance to the farthest location in the circle
    window_days: int  # the last w days, ending on the scan day
    observed: int
    expected: float
    llr: float
    p_value: float
    recurrence_days: float


def llr(c: FloatArray, mu: FloatArray, total: float) -> FloatArray:
    """The Poisson GLR of cylinders with c observed against mu expected (0 where c <= mu)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = c * np.log(c / mu)
        rest = total - c
        outside = np.where(rest > 0, rest * np.log(rest / (total - mu)), 0.0)
        value = inside + outside
    return np.where((c > mu) & (mu > 0), value, 0.0)


class Scan:
    """One scan day's space-time permutation scan over fixed places, days and neighbours."""

    def __init__(
        self,
        location: IntArray,
        day: IntArray,
        *,
        n_locations: int,
        neighbours: Neighbours,
        scan_day: int,
        max_window_days: int,
        min_cases: int = 3,
    ) -> None:
        keep = (day >= 0) & (day <= scan_day)
        self.location = location[keep].astype(np.int64)
        self.day = day[keep].astype(np.int64)
        self.n_locations = n_locations
        self.neighbours = neighbours
        self.scan_day = scan_day
        self.windows = int(max(1, min(max_window_days, scan_day + 1)))
        self.min_cases = min_cases
        self.total = float(len(self.location))
        valid = neighbours.order >= 0
        # Padding points at an extra, always empty place (index n_locations).
        self._order = np.where(valid, neighbours.order, n_locations)
        # Cases per place over the whole period, summed over each circle (centre x k).
        per_place = np.bincount(self.location, minlength=n_locations + 1).astype(np.float64)
        self._circle_total = np.cumsum(per_place[self._order], axis=1)
        # Cases per window anywhere (the last w days, w = 1..W).
        per_day = np.bincount(self.day, minlength=scan_day + 1).astype(np.float64)
        recent = per_day[::-1][: self.windows]
        self._window_total = np.cumsum(recent)
        # mu for every cylinder (centre, k, w).
        if self.total > 0:
            self._expected = (
                self._circle_total[:, :, None] * self._window_total[None, None, :] / self.total
            )
        else:
            self._expected = np.zeros((*self._circle_total.shape, self.windows))
        self._expected_flat = self._expected.reshape(-1)
        # A cylinder counts once it holds min_cases and more than expected: with whole counts,
        # at least this many (one comparison per cylinder instead of two).
        self._needed = np.maximum(float(min_cases), np.floor(self._expected_flat) + 1.0).astype(
            np.float32
        )

    def _observed(self, day: IntArray) -> FloatArray:
        """Cases in every cylinder for these days (the real ones or a shuffle of them)."""
        back = self.scan_day - day
        recent = back < self.windows
        flat = self.location[recent] * self.windows + back[recent]
        size = (self.n_locations + 1) * self.windows
        counts = np.bincount(flat, minlength=size).reshape(self.n_locations + 1, self.windows)
        by_window = np.cumsum(counts, axis=1, dtype=np.float32)  # place x last-w-days
        out: FloatArray = np.cumsum(by_window[self._order], axis=1)
        return out

    def _llr(self, day: IntArray) -> tuple[FloatArray, FloatArray]:
        """LLR of every cylinder (0 where it holds fewer than `min_cases` or no more than
        expected), and the observed counts. The logarithms are taken only where they count: a
        few cylinders in a shuffled data set."""
        c = self._observed(day)
        value = np.zeros(c.shape)
        flat_c, flat_e = c.reshape(-1), self._expected_flat
        hot = np.flatnonzero(flat_c >= self._needed)
        value.reshape(-1)[hot] = llr(flat_c[hot], flat_e[hot], self.total)
        return value, c

    def _best(self, day: IntArray) -> float:
        """The highest LLR of any cylinder for these days (a replication's statistic)."""
        flat_c = self._observed(day).reshape(-1)
        hot = np.flatnonzero(flat_c >= self._needed)
        if not hot.size:
            return 0.0
        return float(llr(flat_c[hot], self._expected_flat[hot], self.total).max())

    def null_maxima(
        self, replications: int, seed: int, *, stop_above: float | None = None, enough: int = 20
    ) -> FloatArray:
        """The best LLR of up to `replications` day-shuffled data sets. With `stop_above`, stop
        once `enough` of them reached it (sequential Monte Carlo, Besag and Clifford 1991): the
        p-value is then clearly large, and days without a cluster cost a few dozen shuffles."""
        rng = np.random.default_rng(seed)
        out = np.empty(replications)
        reached = 0
        for r in range(replications):
            out[r] = self._best(rng.permutation(self.day))
            if stop_above is not None and out[r] >= stop_above:
                reached += 1
                if reached >= enough:
                    return out[: r + 1]
        return out

    def clusters(
        self, *, replications: int = 999, seed: int = 0, max_p: float = 1.0, most: int = 10
    ) -> list[Cluster]:
        """The most likely cluster and the ones that share no place with a better one, best
        first, each with its p-value; those with p <= max_p, at most `most`."""
        if self.total == 0 or self._expected.size == 0:
            return []
        value, observed = self._llr(self.day)
        best_per_centre = value.reshape(len(value), -1)
        arg = best_per_centre.argmax(axis=1)
        best = best_per_centre[np.arange(len(value)), arg]
        candidates = [int(i) for i in np.argsort(-best, kind="stable") if best[i] > 0]
        if not candidates:
            return []
        maxima = self.null_maxima(replications, seed, stop_above=float(best.max()))
        gumbel = _gumbel(maxima)
        taken: set[int] = set()
        out: list[Cluster] = []
        for centre in candidates:
            k, w = divmod(int(arg[centre]), self.windows)
            members = self.neighbours.order[centre, : k + 1]
            members = members[members >= 0]
            if taken.intersection(members.tolist()):
                continue
            p = p_value(float(best[centre]), maxima, gumbel)
            if p > max_p:
                break  # the rest are weaker still
            taken.update(members.tolist())
            out.append(
                Cluster(
                    centre=centre,
                    locations=tuple(int(m) for m in members),
                    radius_m=float(self.neighbours.distance[centre, k]),
                    window_days=w + 1,
                    observed=int(observed[centre, k, w]),
                    expected=float(self._expected[centre, k, w]),
                    llr=float(best[centre]),
                    p_value=p,
                    recurrence_days=1.0 / p,
                )
            )
            if len(out) >= most:
                break
        return out


def _gumbel(maxima: FloatArray) -> tuple[float, float] | None:
    """Location and scale of a Gumbel law fitted to the replications' maxima (moments)."""
    if len(maxima) < 2 or float(np.std(maxima)) == 0.0:
        return None
    scale = float(np.std(maxima, ddof=1)) * math.sqrt(6) / math.pi
    return float(np.mean(maxima)) - EULER_GAMMA * scale, scale


def p_value(value: float, maxima: FloatArray, gumbel: tuple[float, float] | None) -> float:
    """The Monte Carlo p-value of a best LLR; where no replication reaches it, the fitted
    Gumbel tail instead (never above the Monte Carlo bound)."""
    reps = len(maxima)
    above = int((maxima >= value).sum())
    p = (1 + above) / (reps + 1)
    if above == 0 and gumbel is not None:
        location, scale = gumbel
        tail = -math.expm1(-math.exp(-(value - location) / scale))
        p = min(p, max(tail, 1e-12))
    return p
