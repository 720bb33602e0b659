"""The audit history of cases: each change appends a signed row to its case's chain; the rows of
a transaction are queued on the session and linked into the global log just before commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.orm import Session as SASession
from sqlmodel import Session, col

from app.security import Actor
from dispatch import audit
from dispatch.models import AuditHead, Case, CaseHistory
from dispatch.policy import Policy

CASE_TABLE = Case.__table__  # type: ignore[attr-defined]
HISTORY_TABLE = CaseHistory.__table__  # type: ignore[attr-defined]
HEAD_TABLE = AuditHead.__table__  # type: ignore[attr-defined]
_HISTORY = HISTORY_TABLE
_HEAD = HEAD_TABLE
# Built once: `_link_pending` runs in every writing transaction.
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


def open_savepoints(session: Session) -> tuple[Any, ...]:
    """The savepoints open now, innermost first: what a queued item is dropped with."""
    savepoints: list[Any] = []
    tx = session.get_nested_transaction()
    while tx is not None:
        if tx.nested:
            savepoints.append(tx)
        tx = tx.parent
    return tuple(savepoints)


def record(
    session: Session,
    case: Case,
    *,
    policy: Policy,
    action: str,
    from_status: str | None,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one link to the case's history chain, carrying the case's audited state as it is
    now: call it after every change of an audited field (see `audit.AUDITED_FIELDS`).

    The row is queued on the session and written, linked into the global chain, just before
    the transaction commits (`_link_pending`), so the global head is locked only that long.
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
    _queue_history(session, row, key=policy.audit_key)


# History rows recorded in a session but not yet written: (open savepoints, key, row).
_PENDING = "gridgov_audit_pending"


def _queue_history(session: Session, row: dict[str, Any], *, key: str) -> None:
    session.info.setdefault(_PENDING, []).append((open_savepoints(session), key, row))


def _pending_rows(session: Session) -> list[tuple[tuple[Any, ...], str, dict[str, Any]]]:
    pending: list[tuple[tuple[Any, ...], str, dict[str, Any]]] = session.info.get(_PENDING, [])
    return pending


@event.listens_for(SASession, "after_soft_rollback")
def _drop_rolled_back(session: SASession, previous_transaction: Any) -> None:
    """A savepoint rolled back takes its history rows with it; the root takes them all."""
    pending = session.info.get(_PENDING)
    if not pending:
        return
    if previous_transaction.nested:
        pending[:] = [p for p in pending if previous_transaction not in p[0]]
    else:
        pending.clear()


@event.listens_for(SASession, "after_transaction_end")
def _forget_pending(session: SASession, transaction: Any) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_PENDING, None)


@event.listens_for(SASession, "before_commit")
def _link_pending(session: SASession) -> None:
    """Write the queued history rows, linked into the global chain, in one step at commit.

    The `audit_head` row is locked (PostgreSQL; SQLite writers are serialised already) only
    from here to the end of the commit: one SELECT … FOR UPDATE, then the rows and the new head
    (one statement on PostgreSQL).
    """
    if session.in_nested_transaction():
        return  # a savepoint: its rows wait for the real commit
    pending = session.info.get(_PENDING)
    if not pending:
        return
    rows = [row for _, _, row in pending]
    keys = {key for _, key, _ in pending}
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
    if conn.dialect.name == "postgresql":
        # One round trip while the head is locked: the head moves in a data-modifying CTE of
        # the history INSERT (PostgreSQL runs it whether or not the INSERT refers to it).
        move = (
            update(_HEAD)
            .where(_HEAD.c.id == 1)
            .values(gseq=gseq, hash=prev, case_id=prev_case)
            .cte("head_move")
        )
        conn.execute(insert(_HISTORY).values(rows).add_cte(move))
    else:
        conn.execute(_HISTORY_INSERT, rows)
        conn.execute(_HEAD_MOVE, {"new_gseq": gseq, "new_hash": prev, "new_case_id": prev_case})
    pending.clear()


def history(session: Session, case_id: int) -> list[CaseHistory]:
    """A case's history, with the rows this transaction recorded but writes only at commit."""
    rows = list(
        session.execute(
            select(CaseHistory)
            .where(col(CaseHistory.case_id) == case_id)
            .order_by(col(CaseHistory.seq))
        ).scalars()
    )
    pending = _pending_rows(session)
    rows += [CaseHistory(**row) for _, _, row in pending if row["case_id"] == case_id]
    return rows
