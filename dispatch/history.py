"""The audit history of cases: each change appends a signed row to its case's chain; the rows of
a transaction are queued on the session and linked into the global log just before commit."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, bindparam, insert, select, update
from sqlalchemy.orm import Session as SASession
from sqlmodel import Session, col

from core import bulk
from core.security import Party
from core.txqueue import TransactionQueue
from dispatch import audit
from dispatch.models import AuditHead, Case, CaseHistory
from dispatch.policy import Policy

CASE_TABLE = Case.__table__  # type: ignore[attr-defined]
HISTORY_TABLE = CaseHistory.__table__  # type: ignore[attr-defined]
HEAD_TABLE = AuditHead.__table__  # type: ignore[attr-defined]
_HISTORY = HISTORY_TABLE
_HEAD = HEAD_TABLE
# Built once: `_link` runs in every writing transaction.
_HEAD_LOCK = (
    select(_HEAD.c.gseq, _HEAD.c.hash, _HEAD.c.case_id).where(_HEAD.c.id == 1).with_for_update()
)
_HEAD_MOVE = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(
        gseq=bindparam("new_gseq"), hash=bindparam("new_hash"), case_id=bindparam("new_case_id")
    )
)
_HISTORY_INSERT = insert(_HISTORY)


def record(
    session: Session,
    case: Case,
    *,
    policy: Policy,
    action: str,
    from_status: str | None,
    actor: Party,
    now: datetime,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one link to the case's history chain, carrying the case's audited state as it is
    now: call it after every change of an audited field (see `audit.AUDITED_FIELDS`).

    The row is queued on the session and written, linked into the global chain, just before
    the transaction commits (`history._link`), so the global head is locked only that long.
    """
    assert case.id is not None
    seq = case.history_seq + 1
    payload = data or {}
    actor_name = actor.display_name or actor.username
    prev_hash = case.history_head or audit.GENESIS
    state_hash = audit.state_digest(case)
    digest = audit.row_digest(
        key=policy.audit_key,
        prev_hash=prev_hash,
        case_id=case.id,
        seq=seq,
        action=action,
        from_status=from_status,
        to_status=case.status,
        actor_id=actor.id,
        actor_role=str(actor.role),
        actor_name=actor_name,
        at=now,
        reason=reason,
        data=payload,
        state_hash=state_hash,
    )
    row = {
        "case_id": case.id,
        "seq": seq,
        "action": action,
        "from_status": from_status,
        "to_status": str(case.status),
        "actor_id": actor.id,
        "actor_role": str(actor.role),
        "actor_name": actor_name,
        "at": now,
        "reason": reason,
        "data": payload,
        "prev_hash": prev_hash,
        "hash": digest,
        "state_hash": state_hash,
    }
    case.history_seq = seq
    case.history_head = digest
    _QUEUE.put(session, (policy.audit_key, row))


def _link(session: SASession, pending: list[tuple[str, dict[str, Any]]]) -> None:
    """Write the queued history rows, linked into the global chain, in one step at commit.

    The `audit_head` row is locked (PostgreSQL; SQLite writers are serialised already) only
    from here to the end of the commit: one SELECT … FOR UPDATE, then the rows and the new head
    (one statement on PostgreSQL).
    """
    rows = [row for _, row in pending]
    keys = {key for key, _ in pending}
    assert len(keys) == 1, "history rows of one transaction signed with different keys"
    key = keys.pop()
    conn = session.connection()
    head = conn.execute(_HEAD_LOCK).first()
    if head is None:
        raise RuntimeError("audit_head row missing: run `gridgov audit verify`")
    gseq, prev, prev_case = int(head.gseq), str(head.hash), head.case_id
    for row in rows:
        gseq += 1
        ghash = audit.link_digest(
            key=key, gprev_hash=prev, gseq=gseq, prev_case_id=prev_case, row_hash=row["hash"]
        )
        row.update(gseq=gseq, gprev_hash=prev, prev_case_id=prev_case, ghash=ghash)
        prev, prev_case = ghash, row["case_id"]
    head_params = {"new_gseq": gseq, "new_hash": prev, "new_case_id": prev_case}
    if conn.dialect.name != "postgresql":
        conn.execute(_HISTORY_INSERT, rows)
        conn.execute(_HEAD_MOVE, head_params)
    elif len(rows) == 1:
        # One round trip while the head is locked: the head moves in a data-modifying CTE of
        # the history INSERT (PostgreSQL runs it whether or not the INSERT refers to it).
        conn.execute(_insert_moving_head(tuple(rows[0])), {**rows[0], **head_params})
    else:  # a sweep's batch: every row in one statement, not one per row
        columns = tuple(rows[0])
        conn.execute(bulk.insert_rows(HISTORY_TABLE, columns), bulk.rows_param(rows, columns))
        conn.execute(_HEAD_MOVE, head_params)


@cache
def _insert_moving_head(columns: tuple[str, ...]) -> Insert:
    """INSERT of one history row that also moves the head, built once (its compiled form is
    then cached by SQLAlchemy: a statement made anew per commit is compiled every time)."""
    move = _HEAD_MOVE.cte("head_move")
    return insert(_HISTORY).values({c: bindparam(c) for c in columns}).add_cte(move)


# History rows recorded in a session but not yet written: (audit key, row).
_QUEUE: TransactionQueue[tuple[str, dict[str, Any]]] = TransactionQueue("audit_history", _link)


def history(session: Session, case_id: int) -> list[CaseHistory]:
    """A case's history, with the rows this transaction recorded but writes only at commit."""
    rows = list(
        session.execute(
            select(CaseHistory)
            .where(col(CaseHistory.case_id) == case_id)
            .order_by(col(CaseHistory.seq))
        ).scalars()
    )
    rows += [CaseHistory(**row) for _, row in _QUEUE.items(session) if row["case_id"] == case_id]
    return rows
