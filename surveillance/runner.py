"""Running the scans: which categories with which limits, the cases they read, the claim that
makes the scheduler's scans run once per slot however many processes run it, and the warnings
they leave (surveillance.alerts).

A scan reads the study period's cases (`GRIDGOV_WARNING_STUDY_DAYS` local days up to the scan
instant; merged duplicates left out: the same problem reported twice is one), places each at its
grid's centroid and its local day, and hands them per target (every category that is not `off`,
and each subcategory the rules name) to the statistics (surveillance.scan, surveillance.spikes).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import shapely
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from core.db import reader, session_scope
from dispatch.models import Case
from grid.index import GridIndex
from surveillance import alerts
from surveillance.alerts import Finding
from surveillance.models import ScanRun
from taxonomy.catalogue import Catalogue

CLUSTER_SCAN, SPIKE_CHECK = "cluster", "spike"
_RULE = re.compile(r"^(\d{2}(?:\d{2})?)(?:=(off|(\d+)m/(\d+)d/(\d+)))?$")


@dataclass(frozen=True)
class Target:
    """One scan target: a category, or a subcategory scanned on its own, with its limits."""

    category_code: str
    subcategory_code: str | None
    max_radius_m: float
    max_window_days: int
    min_recurrence_days: float


@dataclass(frozen=True)
class ScanSettings:
    study_days: int
    max_radius_m: float
    max_window_days: int
    min_recurrence_days: float
    replications: int
    rules: str
    seed: int = 20_261_203


def targets(catalogue: Catalogue, s: ScanSettings) -> list[Target]:
    """Every category not switched off, then every subcategory the rules name (in the rules'
    order), each with the rule's limits or the settings'."""
    own: dict[str, tuple[float, int, float] | None] = {}
    named_subs: list[str] = []
    for part in filter(None, (p.strip() for p in s.rules.split(","))):
        match = _RULE.match(part)
        if match is None:  # the setting's pattern refuses these at start
            continue
        code, value, radius, days, recurrence = match.groups()
        if len(code) == 4:
            named_subs.append(code)
        if value == "off":
            own[code] = None
        elif value is not None:
            own[code] = (float(radius), int(days), float(recurrence))
    default = (s.max_radius_m, s.max_window_days, s.min_recurrence_days)
    out: list[Target] = []
    for cat in catalogue.categories:
        limits = own.get(cat.code, default)
        if limits is not None:
            out.append(Target(cat.code, None, *limits))
    for code in dict.fromkeys(named_subs):
        sub = catalogue.subcategory(code)
        limits = own.get(code, default)
        if sub is None or limits is None:
            continue
        out.append(Target(catalogue.category_of(code).code, code, *limits))
    return out


@dataclass
class CaseSet:
    """The study period's cases as arrays: id, grid (index into `grid_codes`), local day (0 =
    the study period's first), category and subcategory codes."""

    first_day: date
    scan_day: int
    grid_codes: list[str]
    xy_m: npt.NDArray[np.float64]  # grid centroids, metres east/north of the district's centre
    lat: npt.NDArray[np.float64]
    lng: npt.NDArray[np.float64]
    ids: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    grid: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    day: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    reported: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    category: npt.NDArray[np.str_] = field(default_factory=lambda: np.zeros(0, "U2"))
    subcategory: npt.NDArray[np.str_] = field(default_factory=lambda: np.zeros(0, "U8"))


def centroids(grids: GridIndex) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each grid's centroid (WGS-84 lat, lng), in the index's (code) order."""
    points = shapely.centroid(grids.geometries)
    return shapely.get_y(points), shapely.get_x(points)


def grid_radii(grids: GridIndex) -> npt.NDArray[np.float64]:
    """Each grid's size as the radius of a circle of its area, in metres."""
    lat, _ = centroids(grids)
    k = alerts.EARTH_RADIUS_M * np.pi / 180.0
    area_m2 = shapely.area(grids.geometries) * k * k * np.cos(np.radians(lat))
    return np.asarray(np.sqrt(area_m2 / np.pi), dtype=np.float64)


def to_metres(
    lat: npt.NDArray[np.float64], lng: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Local east/north metres around the points' mean (an equirectangular projection: within
    a district, a few metres off at most)."""
    lat0 = float(np.mean(lat)) if len(lat) else 0.0
    lng0 = float(np.mean(lng)) if len(lng) else 0.0
    k = alerts.EARTH_RADIUS_M * np.pi / 180.0
    return np.column_stack(((lng - lng0) * k * np.cos(np.radians(lat0)), (lat - lat0) * k))


def load_cases(
    session: Session, *, grids: GridIndex, now: datetime, tz: ZoneInfo, study_days: int
) -> CaseSet:
    """The cases reported in the `study_days` local days ending with the scan instant's day."""
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=study_days - 1)
    start = datetime.combine(first_day, datetime.min.time(), tz).astimezone(UTC)
    lat, lng = centroids(grids)
    out = CaseSet(
        first_day=first_day,
        scan_day=study_days - 1,
        grid_codes=list(grids.codes),
        xy_m=to_metres(lat, lng),
        lat=lat,
        lng=lng,
    )
    rows = session.execute(
        select(
            col(Case.id),
            col(Case.grid_code),
            col(Case.reported_at),
            col(Case.category_code),
            col(Case.subcategory_code),
        ).where(
            col(Case.reported_at) >= start,
            col(Case.reported_at) <= now,
            col(Case.merged_into_id).is_(None),
        )
    ).all()
    index = {code: i for i, code in enumerate(grids.codes)}
    kept = [r for r in rows if r[1] in index]  # a grid retired since: not on the map any more
    if not kept:
        return out
    out.ids = np.fromiter((r[0] for r in kept), np.int64, len(kept))
    out.grid = np.fromiter((index[r[1]] for r in kept), np.int64, len(kept))
    out.day = np.fromiter(
        ((r[2].astimezone(tz).date() - first_day).days for r in kept), np.int64, len(kept)
    )
    out.reported = np.fromiter((r[2].timestamp() for r in kept), np.float64, len(kept))
    out.category = np.array([r[3] for r in kept], dtype="U2")
    out.subcategory = np.array([r[4] for r in kept], dtype="U8")
    return out


# A claimed scan that has not finished after this long was dropped (its process killed): the
# slot may be claimed again.
STALE_CLAIM = timedelta(hours=1)


def claim(engine: Engine, kind: str, slot: str, *, now: datetime) -> int | None:
    """The run row of (kind, slot) for this process, or None when another took it (and is
    running it, or ran it)."""
    try:
        with session_scope(engine) as session:
            run = ScanRun(kind=kind, slot=slot, started_at=now)
            session.add(run)
            session.flush()
            return run.id
    except IntegrityError:
        pass
    with session_scope(engine) as session:
        taken = session.execute(
            update(ScanRun)
            .where(
                col(ScanRun.kind) == kind,
                col(ScanRun.slot) == slot,
                col(ScanRun.finished_at).is_(None),
                col(ScanRun.started_at) < now - STALE_CLAIM,
            )
            .values(started_at=now)
            .returning(col(ScanRun.id))
        ).scalar()
        return None if taken is None else int(taken)


def finish(engine: Engine, run_id: int, *, now: datetime, summary: dict[str, Any]) -> None:
    with session_scope(engine) as session:
        run = session.get(ScanRun, run_id)
        if run is not None:
            run.finished_at = now
            run.summary = summary


def run_scan(
    engine: Engine,
    *,
    kind: str,
    now: datetime,
    grids: GridIndex,
    catalogue: Catalogue,
    settings: ScanSettings,
    tz: ZoneInfo,
    is_workday: Callable[[date], bool] = lambda d: d.weekday() < 5,
    slot: str | None = None,
) -> dict[str, Any] | None:
    """One scan of `kind` now: findings per target, recorded as warnings. With `slot` (the
    scheduler's), only the process that claims it runs it (None: another did). Returns what it
    did: targets, cases read, warnings raised / updated / seen (their ids), seconds."""
    started = time.perf_counter()
    run_id = None
    if slot is not None:
        run_id = claim(engine, kind, slot, now=now)
        if run_id is None:
            return None
    try:
        summary = _scan(
            engine,
            kind=kind,
            now=now,
            grids=grids,
            catalogue=catalogue,
            settings=settings,
            tz=tz,
            is_workday=is_workday,
        )
    except BaseException:
        if run_id is not None:
            release(engine, run_id)
        raise
    summary["seconds"] = round(time.perf_counter() - started, 3)
    warnings = summary.pop("warnings")
    if run_id is not None:
        finish(engine, run_id, now=now, summary=summary)
    summary["warnings"] = warnings
    return summary


def _scan(
    engine: Engine,
    *,
    kind: str,
    now: datetime,
    grids: GridIndex,
    catalogue: Catalogue,
    settings: ScanSettings,
    tz: ZoneInfo,
    is_workday: Callable[[date], bool],
) -> dict[str, Any]:
    from surveillance import finders

    finder = finders.clusters if kind == CLUSTER_SCAN else finders.spikes
    with session_scope(reader(engine)) as session:
        cases = load_cases(session, grids=grids, now=now, tz=tz, study_days=settings.study_days)
    ctx = finders.ScanContext(
        now=now,
        tz=tz,
        is_workday=is_workday,
        replications=settings.replications,
        seed=settings.seed,
        grid_radius_m=grid_radii(grids),
    )
    found: list[Finding] = []
    chosen = targets(catalogue, settings)
    for target in chosen:
        found += finder(cases, target, ctx)
    with session_scope(engine) as session:
        recorded = alerts.record(session, found, now=now)
        outcome: dict[str, list[int]] = {"raised": [], "updated": [], "seen": []}
        warnings = []
        for warning, what in recorded:
            assert warning.id is not None
            outcome[what].append(warning.id)
            warnings.append(
                {**alerts.warning_out(warning).model_dump(mode="json"), "outcome": what}
            )
    summary: dict[str, Any] = {
        "kind": kind,
        "at": now.isoformat(),
        "targets": len(chosen),
        "cases": int(len(cases.ids)),
        **outcome,
        "warnings": warnings,
    }
    return summary


def release(engine: Engine, run_id: int) -> None:
    """Let a failed scan's slot go: the next tick claims it again."""
    with session_scope(engine) as session:
        run = session.get(ScanRun, run_id)
        if run is not None:
            session.delete(run)


def due_slots(now: datetime, tz: ZoneInfo, scan_hour: int) -> Sequence[tuple[str, str]]:
    """The scheduler's slots at `now`: the hour's spike check, and the day's cluster scan once
    its local hour has come."""
    local = now.astimezone(tz)
    slots = [(SPIKE_CHECK, local.strftime("%Y-%m-%dT%H"))]
    if local.hour >= scan_hour:
        slots.append((CLUSTER_SCAN, local.strftime("%Y-%m-%d")))
    return slots


def scan_settings(settings: Any) -> ScanSettings:
    """The scan's settings from the service's (`GRIDGOV_WARNING_*`)."""
    return ScanSettings(
        study_days=settings.warning_study_days,
        max_radius_m=settings.warning_max_radius_m,
        max_window_days=settings.warning_max_window_days,
        min_recurrence_days=settings.warning_min_recurrence_days,
        replications=settings.warning_replications,
        rules=settings.warning_rules,
    )
