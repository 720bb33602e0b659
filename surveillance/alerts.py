"""Warnings (预警) as objects: raised from what a scan found, updated while they persist,
acknowledged and closed by a command centre, told through the outbox.

A finding of a scan becomes a warning unless a live one (open or acknowledged) of the same kind
and category already covers it: shares a case with it, or has its centre within the sum of the
two radii while their windows overlap. Then that warning is updated (its window, counts, cases,
strength), and `warning.updated` is told only when its cases changed; otherwise a new warning is
raised (`warning.raised`). A closed warning stays closed: a cluster that comes back is new.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlmodel import Session, col

from core.errors import WarningClosed, WarningNotFound
from core.security import Actor
from notify import outbox
from surveillance.models import EarlyWarning, WarningKind, WarningStatus

LIVE = (WarningStatus.OPEN.value, WarningStatus.ACKNOWLEDGED.value)
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Finding:
    """What a scan found: a cluster (a cylinder of grids and days) or a spike (one grid)."""

    kind: WarningKind
    category_code: str
    subcategory_code: str | None
    area_code: str  # the grid holding most of its cases
    center_lat: float
    center_lng: float
    radius_m: float
    window_start: datetime
    window_end: datetime
    observed: int
    expected: float
    p_value: float
    recurrence_days: float | None
    case_ids: tuple[int, ...]


class CenterOut(BaseModel):
    lat: float
    lng: float


class WarningOut(BaseModel):
    id: int
    kind: str = Field(description="cluster (space-time cluster) or spike (one grid's surge)")
    category_code: str
    subcategory_code: str | None
    area_code: str = Field(description="the grid holding most of its cases")
    center: CenterOut = Field(description="WGS-84")
    radius_m: float
    window_start: datetime
    window_end: datetime
    observed: int
    expected: float
    p_value: float
    recurrence_days: float | None = Field(
        description="how many days of daily scans would pass, on average, before a warning this "
        "strong came from chance alone"
    )
    case_ids: list[int]
    status: str
    raised_at: datetime
    updated_at: datetime
    seen_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    note: str | None
    summary: str = Field(description="the warning in words (Chinese)")


class WarningListOut(BaseModel):
    items: list[WarningOut]
    total: int


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def summary_of(w: EarlyWarning) -> str:
    """The warning in a sentence a command-centre chief reads."""
    what = "空间聚集" if w.kind == WarningKind.CLUSTER else "单网格激增"
    days = max(1, round((w.window_end - w.window_start).total_seconds() / 86400))
    ratio = f"{w.observed / w.expected:.1f} 倍" if w.expected > 0 else "远高于"
    sure = (
        f"约每 {w.recurrence_days:.0f} 天才会偶然出现一次"
        if w.recurrence_days is not None
        else f"p={w.p_value:.3g}"
    )
    return (
        f"{what}：{days} 天内半径约 {w.radius_m:.0f} 米范围有 {w.observed} 件"
        f"（预期 {w.expected:.1f} 件，{ratio}），{sure}"
    )


def warning_out(w: EarlyWarning) -> WarningOut:
    assert w.id is not None
    return WarningOut(
        id=w.id,
        kind=w.kind,
        category_code=w.category_code,
        subcategory_code=w.subcategory_code,
        area_code=w.area_code,
        center=CenterOut(lat=w.center_lat, lng=w.center_lng),
        radius_m=w.radius_m,
        window_start=w.window_start,
        window_end=w.window_end,
        observed=w.observed,
        expected=w.expected,
        p_value=w.p_value,
        recurrence_days=w.recurrence_days,
        case_ids=list(w.case_ids),
        status=w.status,
        raised_at=w.raised_at,
        updated_at=w.updated_at,
        seen_at=w.seen_at,
        acknowledged_at=w.acknowledged_at,
        closed_at=w.closed_at,
        note=w.note,
        summary=summary_of(w),
    )


def _covers(w: EarlyWarning, f: Finding) -> bool:
    if set(w.case_ids) & set(f.case_ids):
        return True
    if f.window_start > w.window_end or w.window_start > f.window_end:
        return False
    near = distance_m(w.center_lat, w.center_lng, f.center_lat, f.center_lng)
    return near <= w.radius_m + f.radius_m


def record(
    session: Session, findings: Iterable[Finding], *, now: datetime
) -> list[tuple[EarlyWarning, str]]:
    """Raise or update a warning for each finding, in the caller's transaction, and tell
    subscribers through the outbox; returns each warning with `raised`, `updated` or `seen`
    (found again, nothing new)."""
    out: list[tuple[EarlyWarning, str]] = []
    touched: set[int] = set()
    for f in sorted(findings, key=lambda f: f.p_value):
        live = session.execute(
            select(EarlyWarning).where(
                col(EarlyWarning.status).in_(LIVE),
                col(EarlyWarning.kind) == f.kind.value,
                col(EarlyWarning.category_code) == f.category_code,
                col(EarlyWarning.subcategory_code).is_(None)
                if f.subcategory_code is None
                else col(EarlyWarning.subcategory_code) == f.subcategory_code,
            )
        ).scalars()
        match = next((w for w in live if w.id not in touched and _covers(w, f)), None)
        if match is None:
            warning = EarlyWarning(
                kind=f.kind.value,
                category_code=f.category_code,
                subcategory_code=f.subcategory_code,
                area_code=f.area_code,
                center_lat=f.center_lat,
                center_lng=f.center_lng,
                radius_m=f.radius_m,
                window_start=f.window_start,
                window_end=f.window_end,
                observed=f.observed,
                expected=f.expected,
                p_value=f.p_value,
                recurrence_days=f.recurrence_days,
                case_ids=sorted(f.case_ids),
                status=WarningStatus.OPEN.value,
                raised_at=now,
                updated_at=now,
                seen_at=now,
            )
            session.add(warning)
            session.flush()
            _tell(session, warning, "warning.raised", now)
            outcome = "raised"
        else:
            warning = match
            new_cases = sorted(set(match.case_ids) | set(f.case_ids))
            changed = new_cases != sorted(match.case_ids)
            warning.area_code = f.area_code
            warning.center_lat, warning.center_lng = f.center_lat, f.center_lng
            warning.radius_m = f.radius_m
            warning.window_start = min(match.window_start, f.window_start)
            warning.window_end = max(match.window_end, f.window_end)
            warning.observed = max(f.observed, len(new_cases) if changed else match.observed)
            warning.expected = f.expected
            warning.p_value = f.p_value
            warning.recurrence_days = f.recurrence_days
            warning.case_ids = new_cases
            warning.seen_at = now
            if changed:
                warning.updated_at = now
                warning.version += 1
            session.flush()
            if changed:
                _tell(session, warning, "warning.updated", now)
            outcome = "updated" if changed else "seen"
        assert warning.id is not None
        touched.add(warning.id)
        out.append((warning, outcome))
    return out


def _tell(session: Session, warning: EarlyWarning, event_type: str, now: datetime) -> None:
    assert warning.id is not None
    outbox.store_warning(
        session,
        event_type=event_type,
        warning_id=warning.id,
        area_code=warning.area_code,
        warning=warning_out(warning).model_dump(mode="json"),
        occurred_at=now,
    )


def _visible(actor: Actor) -> Any:
    """Warnings a command centre sees: its area's (the district's: all)."""
    return col(EarlyWarning.area_code).startswith(actor.area_code or "", autoescape=True)


def list_warnings(
    session: Session,
    *,
    actor: Actor,
    status: str | None = None,
    category_code: str | None = None,
    area_code: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> WarningListOut:
    """Newest first; `area_code` narrows to warnings inside an area (a prefix of their grid)."""
    where = [_visible(actor)]
    if status is not None:
        where.append(col(EarlyWarning.status) == status)
    if category_code is not None:
        where.append(col(EarlyWarning.category_code) == category_code)
    if area_code is not None:
        where.append(col(EarlyWarning.area_code).startswith(area_code, autoescape=True))
    total = int(session.execute(select(func.count()).where(*where)).scalar_one())
    rows: Sequence[EarlyWarning] = (
        session.execute(
            select(EarlyWarning)
            .where(*where)
            .order_by(col(EarlyWarning.raised_at).desc(), col(EarlyWarning.id).desc())
            .limit(limit)
            .offset(offset)
        )
        .scalars()
        .all()
    )
    return WarningListOut(items=[warning_out(w) for w in rows], total=total)


def _mine(session: Session, warning_id: int, actor: Actor) -> EarlyWarning:
    warning: EarlyWarning | None = session.execute(
        select(EarlyWarning).where(col(EarlyWarning.id) == warning_id).with_for_update()
    ).scalar()
    if warning is None or not warning.area_code.startswith(actor.area_code or ""):
        raise WarningNotFound(warning=str(warning_id))
    return warning


def acknowledge(
    session: Session, warning_id: int, *, actor: Actor, note: str | None, now: datetime
) -> EarlyWarning:
    """A command centre has seen the warning (and says what it does about it)."""
    return _move(session, warning_id, WarningStatus.ACKNOWLEDGED, actor=actor, note=note, now=now)


def close(
    session: Session, warning_id: int, *, actor: Actor, note: str | None, now: datetime
) -> EarlyWarning:
    """Done with: a cluster found again later raises a new warning."""
    return _move(session, warning_id, WarningStatus.CLOSED, actor=actor, note=note, now=now)


def _move(
    session: Session,
    warning_id: int,
    to: WarningStatus,
    *,
    actor: Actor,
    note: str | None,
    now: datetime,
) -> EarlyWarning:
    """open → acknowledged → closed (acknowledging twice keeps the first acknowledgement and
    takes the new note); a closed warning moves no more."""
    warning = _mine(session, warning_id, actor)
    if warning.status == WarningStatus.CLOSED:
        raise WarningClosed(warning=str(warning_id))
    if to is WarningStatus.CLOSED:
        warning.status, warning.closed_at, warning.closed_by = to.value, now, actor.id
    elif warning.status == WarningStatus.OPEN:
        warning.status, warning.acknowledged_at, warning.acknowledged_by = to.value, now, actor.id
    if note:
        warning.note = note
    warning.updated_at = now
    warning.version += 1
    session.flush()
    return warning


class WarningFigures(BaseModel):
    area_code: str
    raised: int = Field(description="warnings raised in the period (clusters and spikes)")
    clusters: int
    spikes: int
    open: int = Field(description="of those, still open (nobody acknowledged them)")
    acknowledged: int
    closed: int


class WarningStatsOut(BaseModel):
    items: list[WarningFigures]


def warning_figures(
    session: Session,
    *,
    digits: int,
    start: datetime,
    end: datetime,
    area_code: str | None = None,
) -> WarningStatsOut:
    """Warnings raised in [start, end) per area (the first `digits` digits of their grid), by
    kind and by where they stand now; only areas with warnings."""
    query = select(
        col(EarlyWarning.area_code), col(EarlyWarning.kind), col(EarlyWarning.status)
    ).where(col(EarlyWarning.raised_at) >= start, col(EarlyWarning.raised_at) < end)
    if area_code:
        query = query.where(col(EarlyWarning.area_code).startswith(area_code, autoescape=True))
    counts: dict[str, dict[str, int]] = {}
    for grid, kind, status in session.execute(query):
        row = counts.setdefault(
            grid[:digits],
            dict.fromkeys(("raised", "clusters", "spikes", "open", "acknowledged", "closed"), 0),
        )
        row["raised"] += 1
        row["clusters" if kind == WarningKind.CLUSTER else "spikes"] += 1
        row[status] += 1
    return WarningStatsOut(
        items=[WarningFigures(area_code=code, **row) for code, row in sorted(counts.items())]
    )
