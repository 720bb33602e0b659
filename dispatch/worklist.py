"""A grid worker's work list: the cases in their grids waiting for their on-site check (核查)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session, col

from core.security import Actor
from dispatch.cases import CasePage
from dispatch.models import Case, CaseStatus


def verify_queue(session: Session, *, actor: Actor, limit: int, offset: int = 0) -> CasePage:
    """Resolved cases in the worker's grids (the 核查 stage runs), the soonest due first: the
    one about to get a red card is the one to visit next."""
    grids = sorted(actor.grid_codes)
    if not grids:
        return CasePage(items=[], total=0)
    where = (col(Case.status) == CaseStatus.RESOLVED.value, col(Case.grid_code).in_(grids))
    total = session.execute(select(func.count()).select_from(Case).where(*where)).scalar()
    items = session.execute(
        select(Case)
        .where(*where)
        .order_by(col(Case.stage_due_at).is_(None), col(Case.stage_due_at), col(Case.id))
        .limit(limit)
        .offset(offset)
    ).scalars()
    return CasePage(items=list(items), total=int(total or 0))
