"""Checking the audit log end to end (`gridgov audit verify`) and signing its head."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import reader
from core.errors import AuditBroken
from dispatch import audit
from dispatch.history import CASE_TABLE as _CASE
from dispatch.history import HEAD_TABLE as _HEAD
from dispatch.history import HISTORY_TABLE as _HISTORY

_VERIFY_CASES = 500
_VERIFY_LINKS = 5000
_LINK_COLUMNS = ("case_id", "seq", "gseq", "gprev_hash", "prev_case_id", "hash", "ghash")


def audit_reader(engine: Engine) -> Engine:
    """For `verify_audit`/`audit_checkpoint`: read-only, one snapshot for the whole check
    (REPEATABLE READ on PostgreSQL; a SQLite read transaction is one snapshot already)."""
    engine = reader(engine)
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    return engine


def verify_audit(
    session: Session, *, key: str, checkpoint: tuple[int, str] | None = None
) -> tuple[list[audit.ChainProblem], int]:
    """Check the whole log; returns (problems, number of cases). Memory stays flat.

    Per case (in chunks of cases): its chain, its head and count, the live case row against
    the state its last row recorded, rows left by a removed case. Then the global chain in
    `gseq` order from the legacy anchor, the head row, and `checkpoint` (gseq, hash) if given.
    Use a session of `audit_reader(engine)` so that concurrent writers cannot cause false alarms.
    """
    conn = session.connection()
    problems: list[audit.ChainProblem] = []
    anchor = audit.LegacyAnchor()
    case_columns = [_CASE.c[name] for name in ("id", "history_head", "history_seq")]
    case_columns += [
        _CASE.c[name]
        for name in (*audit.AUDITED_FIELDS, *audit.LATER_FIELDS, *audit.V2_LATER_FIELDS)
    ]
    cases = 0
    lo = 0
    while True:
        chunk = conn.execute(
            select(*case_columns).where(_CASE.c.id > lo).order_by(_CASE.c.id).limit(_VERIFY_CASES)
        ).all()
        last_chunk = len(chunk) < _VERIFY_CASES
        query = select(_HISTORY).where(_HISTORY.c.case_id > lo)
        if not last_chunk:
            query = query.where(_HISTORY.c.case_id <= chunk[-1].id)
        by_case: dict[int, list[Any]] = {}
        for row in conn.execute(query.order_by(_HISTORY.c.case_id, _HISTORY.c.seq)):
            by_case.setdefault(row.case_id, []).append(row)
        live = {c.id: c for c in chunk}
        cases += len(live)
        for case_id in sorted(live.keys() | by_case.keys()):
            rows = by_case.get(case_id, [])
            problems.extend(_verify_case(key, case_id, live.get(case_id), rows))
            legacy = [r for r in rows if r.gseq is None and r.state_hash is None]
            if legacy:
                anchor.add(case_id, len(legacy), legacy[-1].hash)
        if last_chunk:
            break
        lo = chunk[-1].id

    checker = audit.LinkChecker(key=key, anchor=anchor.digest(), checkpoint=checkpoint)
    after = 0
    while True:
        links = conn.execute(
            select(*[_HISTORY.c[name] for name in _LINK_COLUMNS])
            .where(_HISTORY.c.gseq > after)
            .order_by(_HISTORY.c.gseq)
            .limit(_VERIFY_LINKS)
        ).all()
        for link in links:
            checker.feed(link)
        if len(links) < _VERIFY_LINKS:
            break
        after = links[-1].gseq
    head = conn.execute(
        select(_HEAD.c.gseq, _HEAD.c.hash, _HEAD.c.case_id).where(_HEAD.c.id == 1)
    ).first()
    problems.extend(
        checker.finish(
            None if head is None else audit.LogHead(int(head.gseq), head.hash, head.case_id)
        )
    )
    return _with_case_numbers(conn, problems), cases


def _verify_case(
    key: str, case_id: int, case: Any | None, rows: list[Any]
) -> list[audit.ChainProblem]:
    if case is None:
        return [
            audit.ChainProblem(
                case_id, None, f"the case row was removed; {len(rows)} history rows remain"
            )
        ]
    problems = audit.verify_chain(
        key=key,
        case_id=case_id,
        head=case.history_head,
        count=case.history_seq,
        rows=rows,
        state=audit.state_digests(case),
    )
    if not rows:
        problems.append(
            audit.ChainProblem(case_id, None, "the case has no history (every case has a report)")
        )
    for row in rows:
        if row.gseq is None and row.state_hash is not None:
            problems.append(
                audit.ChainProblem(case_id, row.seq, "the row is not linked into the global log")
            )
    return problems


def _with_case_numbers(conn: Any, problems: list[audit.ChainProblem]) -> list[audit.ChainProblem]:
    ids = sorted({p.case_id for p in problems if p.case_id is not None})
    numbers: dict[int, str] = {}
    for i in range(0, len(ids), _VERIFY_CASES):
        numbers.update(
            conn.execute(
                select(_CASE.c.id, _CASE.c.case_no).where(
                    _CASE.c.id.in_(ids[i : i + _VERIFY_CASES])
                )
            )
            .tuples()
            .all()
        )
    return [
        dataclasses.replace(p, case_no=numbers.get(p.case_id)) if p.case_id is not None else p
        for p in problems
    ]


def audit_checkpoint(session: Session, *, key: str) -> str:
    """The signed head of the log (`GSEQ:HASH:MAC`), once the head row matches the last row."""
    conn = session.connection()
    head = conn.execute(select(_HEAD.c.gseq, _HEAD.c.hash).where(_HEAD.c.id == 1)).first()
    if head is None:
        raise AuditBroken()
    gseq = int(head.gseq)
    last = conn.execute(select(func.max(_HISTORY.c.gseq))).scalar()
    if gseq != int(last or 0):
        raise AuditBroken()
    if gseq:
        ghash = conn.execute(select(_HISTORY.c.ghash).where(_HISTORY.c.gseq == gseq)).scalar()
        if ghash != head.hash:
            raise AuditBroken()
    return audit.checkpoint_token(key=key, gseq=gseq, ghash=head.hash)
