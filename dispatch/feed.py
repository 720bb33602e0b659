"""The change feed: every case change in the order it was committed, for live screens.

History rows are linked into the global audit chain at commit, under the chain head's lock
(`dispatch.history`), so `gseq` numbers them in commit order with no gaps a reader could see
later: reading `gseq > last` never skips a change that commits afterwards. The console's
`GET /v1/events/stream` polls this feed once per process, whoever is listening.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select

from core.models import Role
from core.security import Actor
from dispatch.models import Case, CaseHistory

_H = CaseHistory.__table__  # type: ignore[attr-defined]
_C = Case.__table__  # type: ignore[attr-defined]

_AFTER = (
    select(
        _H.c.gseq,
        _H.c.case_id,
        _H.c.action,
        _H.c.to_status,
        _H.c.at,
        _C.c.case_no,
        _C.c.grid_code,
        _C.c.department_code,
        _C.c.dispatched_at,
        _C.c.reporter_id,
    )
    .select_from(_H.join(_C, _C.c.id == _H.c.case_id))
    .where(_H.c.gseq > bindparam("after"))
    .order_by(_H.c.gseq)
    .limit(bindparam("limit"))
)


@dataclass(frozen=True)
class Change:
    """One committed change of a case, with what deciding who may see it needs."""

    seq: int
    case_id: int
    case_no: str
    action: str
    status: str
    at: datetime
    grid_code: str
    department_code: str
    dispatched: bool
    reporter_id: int | None

    def message(self) -> dict[str, object]:
        """What a listener is told: enough to refresh its view, nothing personal."""
        return {
            "seq": self.seq,
            "case_id": self.case_id,
            "case_no": self.case_no,
            "action": self.action,
            "status": self.status,
            "at": self.at.isoformat(),
        }


def latest_seq(connection: Connection) -> int:
    """The place of the last committed change (0 when there is none)."""
    return int(connection.execute(select(func.max(_H.c.gseq))).scalar() or 0)


def changes_after(connection: Connection, after: int, *, limit: int = 500) -> list[Change]:
    """Committed changes after `after`, oldest first, at most `limit`."""
    rows = connection.execute(_AFTER, {"after": after, "limit": limit}).all()
    return [
        Change(
            seq=int(r.gseq),
            case_id=r.case_id,
            case_no=r.case_no,
            action=r.action,
            status=r.to_status,
            at=r.at,
            grid_code=r.grid_code,
            department_code=r.department_code,
            dispatched=r.dispatched_at is not None,
            reporter_id=r.reporter_id,
        )
        for r in rows
    ]


def may_see(actor: Actor, change: Change) -> bool:
    """The rule of `dispatch.cases.visibility`, on one change (tests hold the two together)."""
    if actor.is_command_centre:
        return change.grid_code.startswith(actor.area_code or "")
    if actor.role is Role.DEPARTMENT:
        return change.department_code == (actor.department_code or "") and change.dispatched
    if actor.role is Role.GRID_WORKER:
        return change.grid_code in actor.grid_codes or change.reporter_id == actor.id
    return False
