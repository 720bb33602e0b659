"""Who reported a case, and which cases a reporter follows: 并单 folds merged cases' reporters
into the surviving case, so they are told about it and see it as theirs."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session, col

from dispatch.models import Case
from events.models import Report

# A merge chain longer than this is a data error; stop rather than loop.
_MAX_MERGE_DEPTH = 64


def merged_family(session: Session, case_id: int) -> list[int]:
    """The case and every case merged into it, transitively (breadth first, the case first)."""
    family = [case_id]
    seen = {case_id}
    frontier = [case_id]
    for _ in range(_MAX_MERGE_DEPTH):
        if not frontier:
            break
        rows = session.execute(
            select(col(Case.id))
            .where(col(Case.merged_into_id).in_(frontier))
            .order_by(col(Case.id))
        ).scalars()
        frontier = [i for i in rows if i not in seen]
        seen.update(frontier)
        family.extend(frontier)
    return family


def reporters_of(session: Session, case_id: int) -> list[tuple[str, str]]:
    """(channel, identity) of every report of the case and of the cases merged into it,
    distinct, in the order they reported."""
    family = merged_family(session, case_id)
    rows = session.execute(
        select(col(Report.channel), col(Report.reporter_identity))
        .where(col(Report.case_id).in_(family))
        .order_by(col(Report.received_at), col(Report.id))
    ).all()
    out: list[tuple[str, str]] = []
    for channel, identity in rows:
        if (channel, identity) not in out:
            out.append((channel, identity))
    return out


def surviving_case_id(session: Session, case_id: int) -> int:
    """The case a merged case lives on in (following merge chains); the case itself otherwise."""
    current = case_id
    for _ in range(_MAX_MERGE_DEPTH):
        target = session.execute(
            select(col(Case.merged_into_id)).where(col(Case.id) == current)
        ).scalar_one_or_none()
        if target is None:
            return current
        current = target
    return current


def cases_of_reporter(
    session: Session, *, channel: str, identity: str, limit: int = 10
) -> list[Case]:
    """The reporter's cases, newest report first; a merged case is replaced by the case it
    was merged into (the resident follows the surviving case), each case once."""
    if limit <= 0:
        return []
    rows = session.execute(
        select(col(Report.case_id))
        .where(col(Report.channel) == channel, col(Report.reporter_identity) == identity)
        .order_by(col(Report.received_at).desc(), col(Report.id).desc())
    ).scalars()
    out: list[Case] = []
    seen: set[int] = set()
    for case_id in rows:
        survivor = surviving_case_id(session, case_id)
        if survivor in seen:
            continue
        seen.add(survivor)
        case = session.get(Case, survivor)
        if case is not None:
            out.append(case)
        if len(out) >= limit:
            break
    return out


def reports_by(
    session: Session, *, channel: str, identity: str, limit: int, offset: int = 0
) -> tuple[list[tuple[Report, Case]], int]:
    """One page of a reporter's own reports with their cases (as filed, merged ones too),
    newest first, and how many there are in all."""
    where = (col(Report.channel) == channel, col(Report.reporter_identity) == identity)
    total = session.execute(select(func.count()).select_from(Report).where(*where)).scalar()
    rows = session.execute(
        select(Report, Case)
        .join(Case, col(Case.id) == col(Report.case_id))
        .where(*where)
        .order_by(col(Report.received_at).desc(), col(Report.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [(r, c) for r, c in rows], int(total or 0)
