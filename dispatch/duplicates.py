"""并单 candidates: at intake, the open cases of the new case's category within a radius and a
time window that depend on the category are stored as candidates for the command centre to
merge; shown with the case and under GET /v1/cases/{id}/duplicates."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Numeric, bindparam, cast, insert, select
from sqlalchemy import func as sqlfunc
from sqlmodel import Session, col

from core.security import Actor
from dispatch.cases import FINISHED_STATUSES, visibility
from dispatch.models import Case, CaseStatus, DuplicateCandidate


@dataclass(frozen=True)
class DuplicateRule:
    """How near and how recent an open case of the category must be to be a candidate."""

    radius_m: float
    window: timedelta


def _rule(radius_m: float, days: float) -> DuplicateRule:
    return DuplicateRule(radius_m, timedelta(days=days))


# Radius and window by top-level category. A fixed object (a lamp post, a house) is reported
# from close by, again over days; something seen or felt from afar (smoke, an outage, a flood)
# from a wide area within hours; an epidemic sign over the incubation time (DOMAIN.md: standing
# water / mosquito reports within a few hundred metres and two weeks).
DEFAULT_RULES: Mapping[str, DuplicateRule] = {
    "01": _rule(100, 3),  # 矛盾纠纷: the same parties at one address
    "02": _rule(150, 2),  # 治安隐患: a scene, reported while it lasts
    "03": _rule(100, 7),  # 安全生产: a fixed site (workshop, building site), reported for days
    "04": _rule(150, 3),  # 消防安全: a blocked exit, a fire seen by neighbours
    "05": _rule(150, 3),  # 道路交通: a road defect or parking along one stretch
    "06": _rule(100, 2),  # 市容环境: garbage and dirt, cleared (or re-reported) within days
    "07": _rule(300, 3),  # 环境保护: smoke, smell and noise reach a wide area
    "08": _rule(50, 7),  # 公共设施: one lamp or manhole cover; its neighbour is another object
    "09": _rule(100, 30),  # 违法建设: a structure stays; neighbours report it for weeks
    "10": _rule(100, 7),  # 食品药品安全: one stall or shop
    "11": _rule(100, 7),  # 市场监管: one shop
    "12": _rule(300, 14),  # 公共卫生: mosquito breeding / epidemic signs, incubation time
    "13": _rule(200, 14),  # 劳动保障: many workers of one employer, over weeks
    "14": _rule(50, 14),  # 人口房屋: one house
    "15": _rule(100, 7),  # 特殊人群: one person, one home
    "16": _rule(500, 1),  # 应急灾害: waterlogging, typhoon damage: an area, within hours
    "17": _rule(500, 1),  # 民生服务: an outage is felt by a neighbourhood at once
}
FALLBACK_RULE = _rule(100, 3)
MAX_RADIUS_M = 5000.0
MAX_WINDOW = timedelta(days=90)

_SETTING = re.compile(r"^(\d{2})=(\d+(?:\.\d+)?)m/(\d+)([hd])$")


def parse_rules(text: str) -> dict[str, DuplicateRule]:
    """Overrides from the setting `GRIDGOV_DUPLICATE_RULES`, e.g. `05=200m/2d,16=800m/12h`."""
    rules: dict[str, DuplicateRule] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = _SETTING.match(part)
        if m is None:
            raise ValueError(f"duplicate rule {part!r}: expected CODE=RADIUSm/WINDOW(h|d)")
        code, radius, amount, unit = m.groups()
        window = timedelta(hours=int(amount)) if unit == "h" else timedelta(days=int(amount))
        if not 0 < float(radius) <= MAX_RADIUS_M or not timedelta(0) < window <= MAX_WINDOW:
            raise ValueError(
                f"duplicate rule {part!r}: radius 0-{MAX_RADIUS_M:g} m, window up to 90 days"
            )
        rules[code] = DuplicateRule(float(radius), window)
    return rules


@dataclass(frozen=True)
class DuplicateRules:
    """The rules in force: the defaults, then the setting's overrides; 0 candidates: off."""

    overrides: Mapping[str, DuplicateRule] = field(default_factory=dict)
    max_candidates: int = 10

    def for_category(self, code: str) -> DuplicateRule:
        return self.overrides.get(code) or DEFAULT_RULES.get(code) or FALLBACK_RULE


# Metres per degree of latitude on the sphere `grid.coords.haversine_m` uses. At a few hundred
# metres the flat-earth distance (longitude scaled by cos(latitude)) is haversine's to 1e-4.
_M_PER_DEG = 6371008.8 * math.pi / 180
_FINISHED = [s.value for s in FINISHED_STATUSES]
_CASES = Case.__table__  # type: ignore[attr-defined]
_TABLE = DuplicateCandidate.__table__  # type: ignore[attr-defined]
_COLUMNS = ("case_id", "candidate_case_id", "distance_m", "found_at")
_INSERT = insert(_TABLE)
# The open cases of the category in the box around the point, reported since `since`, with
# their distance in metres.
_DISTANCE = _M_PER_DEG * sqlfunc.sqrt(
    (_CASES.c.lat - bindparam("lat")) * (_CASES.c.lat - bindparam("lat"))
    + (_CASES.c.lng - bindparam("lng")) * (_CASES.c.lng - bindparam("lng")) * bindparam("cos2")
)
_CONDITIONS = (
    _CASES.c.category_code == bindparam("category_code"),
    _CASES.c.lat.between(bindparam("lat_min"), bindparam("lat_max")),
    _CASES.c.lng.between(bindparam("lng_min"), bindparam("lng_max")),
    _CASES.c.reported_at >= bindparam("since", type_=_CASES.c.reported_at.type),
    _CASES.c.status.not_in(_FINISHED),
    _CASES.c.id != bindparam("case_id"),
)
# At most this many cases of the box are measured: a spot where more open cases of one
# category were reported within the window (a benchmark that files every report at one point
# has thousands) would otherwise cost every new report there a scan of them all; past it the
# candidates are the nearest among the first so many of the box in index order.
SCAN_LIMIT = 200
_NEAR = (
    select(_CASES.c.id.label("other"), _DISTANCE.label("distance_m"))
    .where(*_CONDITIONS)
    .limit(SCAN_LIMIT)
    .subquery("near")
)
_NEAREST = (
    select(_NEAR.c.other, _NEAR.c.distance_m)
    .where(_NEAR.c.distance_m <= bindparam("radius_m"))
    .order_by(_NEAR.c.distance_m, _NEAR.c.other.desc())
    .limit(bindparam("nearest"))
    .subquery("nearest")
)
# PostgreSQL: found and stored in one statement (intake runs it for every report), nothing
# sent to this process. Elsewhere (SQLite: in process, and `sqrt` is not in every build) the
# same selection is read back and stored; distances are computed here the same way.
_RECORD = _INSERT.from_select(
    list(_COLUMNS),
    select(
        bindparam("case_id"),
        _NEAREST.c.other,
        sqlfunc.round(cast(_NEAREST.c.distance_m, Numeric), 1),
        bindparam("found_at", type_=_TABLE.c.found_at.type),
    ),
)
_NEAR_ROWS = select(_CASES.c.id, _CASES.c.lat, _CASES.c.lng).where(*_CONDITIONS).limit(SCAN_LIMIT)


def _params(
    *, case_id: int, category_code: str, lat: float, lng: float, now: datetime, rule: DuplicateRule
) -> dict[str, Any]:
    dlat = rule.radius_m / _M_PER_DEG * 1.001  # the box a little larger than the circle
    dlng = dlat / max(math.cos(math.radians(abs(lat) + dlat)), 1e-6)
    return {
        "category_code": category_code,
        "lat_min": lat - dlat,
        "lat_max": lat + dlat,
        "lng_min": lng - dlng,
        "lng_max": lng + dlng,
        "since": now - rule.window,
        "case_id": case_id,
        "lat": lat,
        "lng": lng,
        "cos2": math.cos(math.radians(lat)) ** 2,
        "radius_m": rule.radius_m,
    }


def find(
    session: Session,
    *,
    case_id: int,
    category_code: str,
    lat: float,
    lng: float,
    now: datetime,
    rules: DuplicateRules,
) -> list[tuple[int, float]]:
    """(case id, distance in metres) of the open cases of the category within its radius,
    reported within its window, nearest first, at most `max_candidates`. A bounding box on
    (category_code, lat, lng) (one index, both databases) narrows."""
    if rules.max_candidates <= 0:
        return []
    rule = rules.for_category(category_code)
    params = _params(
        case_id=case_id, category_code=category_code, lat=lat, lng=lng, now=now, rule=rule
    )
    cos2 = params["cos2"]
    near = [
        (other, _M_PER_DEG * math.sqrt((o_lat - lat) ** 2 + (o_lng - lng) ** 2 * cos2))
        for other, o_lat, o_lng in session.connection().execute(_NEAR_ROWS, params)
    ]
    near = [(other, d) for other, d in near if d <= rule.radius_m]
    near.sort(key=lambda pair: (pair[1], -pair[0]))
    return near[: rules.max_candidates]


def record(session: Session, case: Case, *, now: datetime, rules: DuplicateRules) -> int:
    """Find and store the candidates of a case just opened; how many were found."""
    assert case.id is not None
    if rules.max_candidates <= 0:
        return 0
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rule = rules.for_category(case.category_code)
        params = _params(
            case_id=case.id,
            category_code=case.category_code,
            lat=case.lat,
            lng=case.lng,
            now=now,
            rule=rule,
        )
        return int(
            conn.execute(
                _RECORD, {**params, "nearest": rules.max_candidates, "found_at": now}
            ).rowcount
        )
    found = find(
        session,
        case_id=case.id,
        category_code=case.category_code,
        lat=case.lat,
        lng=case.lng,
        now=now,
        rules=rules,
    )
    if found:
        conn.execute(
            _INSERT,
            [
                {"case_id": case.id, "candidate_case_id": other, "distance_m": round(d, 1)}
                | {"found_at": now}
                for other, d in found
            ],
        )
    return len(found)


@dataclass(frozen=True)
class Candidate:
    """A candidate as shown: the other case's number and state now."""

    case_id: int
    case_no: str
    distance_m: float
    status: str
    reported_at: datetime


def may_see_candidates(viewer: Actor) -> bool:
    """并单 is the command centre's: only it is shown candidates."""
    return viewer.is_command_centre


def candidates_of(
    session: Session, case_ids: Iterable[int], *, viewer: Actor
) -> dict[int, list[Candidate]]:
    """The stored candidates of these cases that the viewer may see and could still merge into:
    a candidate since closed, rejected or itself merged is dropped. Nearest first."""
    ids = sorted(set(case_ids))
    if not ids or not may_see_candidates(viewer):
        return {}
    # The joined case is the candidate, so the viewer's visibility applies to it as written.
    query = (
        select(
            col(DuplicateCandidate.case_id),
            col(Case.id),
            col(Case.case_no),
            col(DuplicateCandidate.distance_m),
            col(Case.status),
            col(Case.reported_at),
        )
        .join(Case, col(Case.id) == col(DuplicateCandidate.candidate_case_id))
        .where(col(DuplicateCandidate.case_id).in_(ids), col(Case.status).not_in(_FINISHED))
        .order_by(col(DuplicateCandidate.case_id), col(DuplicateCandidate.distance_m), col(Case.id))
    )
    scope = visibility(viewer)
    if scope is not None:
        query = query.where(scope)
    out: dict[int, list[Candidate]] = {}
    for case_id, cid, case_no, distance, status, reported_at in session.execute(query):
        out.setdefault(case_id, []).append(
            Candidate(cid, case_no, float(distance), status, reported_at)
        )
    return out


def merged_into_numbers(session: Session, cases: Iterable[Case]) -> dict[int, str]:
    """case_no of the case each merged case went into (by the target's id)."""
    targets = sorted({c.merged_into_id for c in cases if c.merged_into_id is not None})
    if not targets:
        return {}
    rows = session.execute(
        select(col(Case.id), col(Case.case_no)).where(col(Case.id).in_(targets))
    ).all()
    return {int(i): str(no) for i, no in rows}


@dataclass(frozen=True)
class Related:
    """What a case answer shows about other cases: its 并单 candidates and merge target."""

    candidates: Mapping[int, list[Candidate]] = field(default_factory=dict)
    merged_into_nos: Mapping[int, str] = field(default_factory=dict)


def related(session: Session, cases: Iterable[Case], *, viewer: Actor) -> Related:
    """Both in two queries for a whole page of cases."""
    listed = list(cases)
    return Related(
        candidates=candidates_of(
            session, (c.id for c in listed if c.id is not None), viewer=viewer
        ),
        merged_into_nos=merged_into_numbers(session, listed),
    )


# A case can be merged away only before it is dispatched (dispatch.actions: `merge`).
_MERGEABLE = (CaseStatus.REPORTED.value, CaseStatus.REGISTERED.value)


def later_reports_of(session: Session, case_id: int, *, viewer: Actor) -> list[Candidate]:
    """The reverse view: cases that came in later and named this one as a candidate and may
    still be merged into it (reported or registered), those the viewer may see, nearest first."""
    if not may_see_candidates(viewer):
        return []
    query = (
        select(
            col(Case.id),
            col(Case.case_no),
            col(DuplicateCandidate.distance_m),
            col(Case.status),
            col(Case.reported_at),
        )
        .join(Case, col(Case.id) == col(DuplicateCandidate.case_id))
        .where(
            col(DuplicateCandidate.candidate_case_id) == case_id,
            col(Case.status).in_(_MERGEABLE),
        )
        .order_by(col(DuplicateCandidate.distance_m), col(Case.id))
    )
    scope = visibility(viewer)
    if scope is not None:
        query = query.where(scope)
    return [
        Candidate(cid, case_no, float(distance), status, reported_at)
        for cid, case_no, distance, status, reported_at in session.execute(query)
    ]
