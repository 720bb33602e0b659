"""The tamper-evident case log: each history row carries HMAC(key, previous hash + its content).

Changing, deleting or reordering a row breaks the chain from that row on; without the key the
chain cannot be recomputed. The case row keeps the head hash and count, so cutting rows off the
end is caught too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def row_digest(
    *,
    key: str,
    prev_hash: str,
    case_id: int,
    seq: int,
    action: str,
    from_status: str | None,
    to_status: str,
    actor_id: int | None,
    actor_role: str,
    actor_name: str,
    at: datetime,
    reason: str | None,
    data: dict[str, Any],
) -> str:
    content = json.dumps(
        [
            prev_hash,
            case_id,
            seq,
            action,
            from_status,
            to_status,
            actor_id,
            actor_role,
            actor_name,
            at.astimezone(UTC).isoformat(timespec="microseconds"),
            reason,
            data,
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hmac.new(key.encode(), content.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    case_id: int
    seq: int | None
    problem: str


def verify_chain(
    *, key: str, case_id: int, head: str, count: int, rows: Sequence[Any]
) -> list[ChainProblem]:
    """Problems in one case's chain (empty when intact); rows must be ordered by seq."""
    problems: list[ChainProblem] = []
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        if row.seq != expected_seq:
            problems.append(ChainProblem(case_id, row.seq, f"expected seq {expected_seq}"))
        if row.prev_hash != prev:
            problems.append(ChainProblem(case_id, row.seq, "prev_hash does not link"))
        digest = row_digest(
            key=key,
            prev_hash=row.prev_hash,
            case_id=row.case_id,
            seq=row.seq,
            action=row.action,
            from_status=row.from_status,
            to_status=row.to_status,
            actor_id=row.actor_id,
            actor_role=row.actor_role,
            actor_name=row.actor_name,
            at=row.at,
            reason=row.reason,
            data=row.data,
        )
        if not hmac.compare_digest(digest, row.hash):
            problems.append(ChainProblem(case_id, row.seq, "content does not match its hash"))
        prev = row.hash
    if len(rows) != count:
        problems.append(ChainProblem(case_id, None, f"case says {count} rows, found {len(rows)}"))
    if prev != (head or GENESIS):
        problems.append(ChainProblem(case_id, None, "case head hash does not match last row"))
    return problems
