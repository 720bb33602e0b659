"""The SLA board (督办看板): open cases and their yellow and red cards, per area or department.

Counts the cases still in the loop (everything but closed, rejected and merged) that the caller
may see, grouped by the area of a level holding their grid or by the department they are with,
with how many carry a yellow card (预警) or a red one (超时) and the earliest deadline among
them. The console's map colours its areas with it; the SLA board ranks them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy import Boolean, Integer, func, literal_column, select
from sqlalchemy import case as when
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from core.security import Actor
from dispatch.cases import visibility
from dispatch.models import OPEN_LOOP_PREDICATE, Case, CaseCard, Department, WarningLevel
from grid.models import CODE_LENGTH, Area, AreaLevel


class BoardBy(StrEnum):
    TOWN = "town"
    VILLAGE = "village"
    GRID = "grid"
    DEPARTMENT = "department"


class BoardRow(BaseModel):
    code: str = Field(description="the area's code, or the department's")
    name: str | None
    open: int = Field(description="cases in the loop: not closed, rejected or merged")
    warning: int = Field(description="of them with a yellow card (预警: most of the limit used)")
    overdue: int = Field(description="of them with a red card (超时)")
    oldest_due_at: datetime | None = Field(description="the earliest deadline among them")


class BoardOut(BaseModel):
    by: str
    items: list[BoardRow] = Field(
        description="most overdue first, then most warned, then most open"
    )
    total: BoardRow = Field(description="all the caller's open cases")


def _count(level: WarningLevel) -> ColumnElement[int]:
    # From the card table (see CaseCard): the same level as the case row's, by its triggers.
    return func.sum(when((col(CaseCard.warning_level) == level.value, 1), else_=0).cast(Integer))


def board(session: Session, *, actor: Actor, by: BoardBy) -> BoardOut:
    key: ColumnElement[str]
    if by is BoardBy.DEPARTMENT:
        key = Case.__table__.c.department_code  # type: ignore[attr-defined]
    else:
        key = func.substr(col(Case.grid_code), 1, CODE_LENGTH[AreaLevel(by.value)])
    # Qualified: `case_card` has a status too. Said as the index says it (see the model).
    open_loop = literal_column(f"gg_case.{OPEN_LOOP_PREDICATE}", Boolean)
    conditions: list[ColumnElement[bool]] = [open_loop]
    scope = visibility(actor)
    if scope is not None:
        conditions.append(scope)
    rows = session.execute(
        select(
            key.label("code"),
            func.count().label("open"),
            _count(WarningLevel.YELLOW).label("warning"),
            _count(WarningLevel.RED).label("overdue"),
            func.min(col(Case.due_at)).label("oldest"),
        )
        .select_from(Case)
        .outerjoin(CaseCard, col(CaseCard.case_id) == col(Case.id))
        .where(*conditions)
        .group_by(key)
    ).all()
    codes = [r.code for r in rows]
    named = Department if by is BoardBy.DEPARTMENT else Area
    names: dict[str, str] = {
        n.code: n.name
        for n in session.execute(
            select(col(named.code), col(named.name)).where(col(named.code).in_(codes))
        )
    }
    items = [
        BoardRow(
            code=r.code,
            name=names.get(r.code),
            open=int(r.open),
            warning=int(r.warning or 0),
            overdue=int(r.overdue or 0),
            oldest_due_at=r.oldest,
        )
        for r in rows
    ]
    items.sort(key=lambda i: (-i.overdue, -i.warning, -i.open, i.code))
    oldest = [i.oldest_due_at for i in items if i.oldest_due_at is not None]
    total = BoardRow(
        code="",
        name=None,
        open=sum(i.open for i in items),
        warning=sum(i.warning for i in items),
        overdue=sum(i.overdue for i in items),
        oldest_due_at=min(oldest) if oldest else None,
    )
    return BoardOut(by=by.value, items=items, total=total)
