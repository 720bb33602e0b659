"""The tamper-evident case log: two HMAC-SHA256 chains over the same rows, keyed by the secret.

- Per case: each history row carries HMAC(key, previous row's hash + its content + the digest
  of the case state it produced). Changing, deleting or reordering a row breaks the chain from
  that row on; the case row keeps the head hash and count, and its audited fields must agree
  with the state digest of its last row, so a case row edited in place is caught too.
- Global: every row also links to the row written before it in the whole log (`gseq`,
  `gprev_hash`, `ghash`, and the predecessor's case id), serialised through the single
  `audit_head` row. A case removed with its history, or any removed row, leaves a gap that
  names the case. A signed checkpoint of the head (`checkpoint_token`) kept elsewhere catches a
  log cut back to before it.

Rows written before migration 0003 ("legacy") carry no state digest and no global link: they
are checked by the per-case rule, and the global chain starts from a digest of them (the
legacy anchor: each case's legacy row count and last hash), which the first linked row seals.

Without the key none of this can be recomputed; with the key everything can (see the README).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from operator import attrgetter
from typing import Any

GENESIS = "0" * 64
LEGACY_ANCHOR_TAG = "gridgov-audit-legacy-v1"
_CHECKPOINT_TAG = "gridgov-audit-checkpoint-v1"

# The case fields whose every change must be recorded. Not here: bookkeeping that changes
# without a decision (next_check_at, updated_at, version) and the chain's own head/count.
AUDITED_FIELDS: tuple[str, ...] = (
    "case_no",
    "status",
    "channel",
    "reporter_id",
    "description",
    "lat",
    "lng",
    "location",
    "grid_code",
    "grid_rule",
    "category_code",
    "subcategory_code",
    "classification_score",
    "department_code",
    "urgency",
    "time_limit_value",
    "time_limit_unit",
    "merged_into_id",
    "warning_level",
    "escalation_level",
    "extension_count",
    "return_count",
    "redo_count",
    "paused_seconds",
    "suspended_at",
    "status_before_suspend",
    "clock_started_at",
    "warn_at",
    "due_at",
    "occurred_at",
    "reported_at",
    "registered_at",
    "dispatched_at",
    "accepted_at",
    "resolved_at",
    "verified_at",
    "closed_at",
)
# Fields added after the digest was sealed (issue 8: 延期, 回访, stage limits, handling time),
# with the value every case had before they existed. One counts only when it differs from that
# value, so every state recorded before stays reproducible while a change to any of them later
# (a satisfaction edited in the database, say) no longer matches the last row.
LATER_FIELDS: dict[str, Any] = {
    "extension_request_hours": None,
    "extension_seconds": 0.0,
    "visit_satisfaction": None,
    "visited_at": None,
    "reopen_until": None,
    "stage_warn_at": None,
    "stage_due_at": None,
    "stage_warning": "none",
    "handling_seconds": None,
}
_FLOAT_FIELDS = frozenset(
    {
        "lat",
        "lng",
        "classification_score",
        "paused_seconds",
        "extension_seconds",
        "handling_seconds",
    }
)
# The digest is a sealed format: every state recorded since 0003 must still reproduce. Migration
# 0007 renamed the case's `source` to `channel` and respelled `command_centre` as `dispatcher`,
# so the digest keeps the old name and spelling (a one-to-one mapping: no channel is spelled
# `command_centre`). The stored column is still covered, old rows verify unchanged.
_DIGEST_NAMES = {"channel": "source"}
_DIGEST_CHANNEL_SPELLING = {"dispatcher": "command_centre"}


# One encoder for every digest: `json.dumps` with options builds a new one per call, which cost
# as much as the encoding itself.
_CANONICAL = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
)


def _canonical_json(value: Any) -> str:
    return _CANONICAL.encode(value)


def _hmac(key: str, content: str) -> str:
    return hmac.new(key.encode(), content.encode(), hashlib.sha256).hexdigest()


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:  # as read from the database it is UTC already
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def _canonical_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "location":
        return [float(value.x), float(value.y)]
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, Enum):
        return str(value.value)
    if name in _FLOAT_FIELDS:
        return float(value)
    if name == "channel":
        return _DIGEST_CHANNEL_SPELLING.get(str(value), str(value))
    if isinstance(value, bool | int):
        return int(value)
    return value


def _canonical_value(value: Any) -> Any:
    """`_canonical_field` of a field without a rule of its own by name, the common types first
    (the digest runs for every change: every report, every case a sweep touches)."""
    kind = type(value)
    if value is None or kind is str or kind is int:
        return value
    if kind is datetime:
        return _instant(value)
    return _canonical_field("", value)


# Fields whose canonical value depends on their name (see `_canonical_field`).
_NAMED_RULES = frozenset({"location", "channel"}) | _FLOAT_FIELDS
_AUDITED_PLAN = tuple(
    (name, _DIGEST_NAMES.get(name, name), name in _NAMED_RULES) for name in AUDITED_FIELDS
)
_LATER_PLAN = tuple(
    (name, name in _NAMED_RULES, _canonical_field(name, before))
    for name, before in LATER_FIELDS.items()
)


def case_state(case: Any) -> dict[str, Any]:
    """The audited fields of a case (an ORM object or a row), as canonical JSON values."""
    state = {
        key: _canonical_field(name, value) if named else _canonical_value(value)
        for name, key, named in _AUDITED_PLAN
        for value in (getattr(case, name),)
    }
    for name, named, before in _LATER_PLAN:
        raw = getattr(case, name)
        value = _canonical_field(name, raw) if named else _canonical_value(raw)
        if value != before:
            state[name] = value
    return state


def state_digest_v1(case: Any) -> str:
    """The first state digest (rows written before the second): SHA-256 of the sorted canonical
    JSON of `case_state`. Kept to verify a case whose last row still carries one."""
    return hashlib.sha256(_canonical_json(case_state(case)).encode()).hexdigest()


# The second state digest: every audited field (AUDITED_FIELDS, then LATER_FIELDS) in a fixed
# order, each a type tag and its canonical text, joined by a separator that is escaped inside
# strings. The same state as the first digest sees (instants in UTC, floats as floats, enums by
# value), without building a dictionary and sorting it into JSON: about half the cost, which
# every change pays (every report, each of a sweep's thousand cases).
_V2_TAG = "gridgov-state-v2"
_V2_SEP = "\x1e"
_V2_FIELDS = (*AUDITED_FIELDS, *LATER_FIELDS)
_V2_VALUES = attrgetter(*_V2_FIELDS)
_V2_FLOAT, _V2_POINT, _V2_ANY = 1, 2, 0
# An instant: microseconds since the epoch (the same instant in any offset gives the same text).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_V2_KINDS = tuple(
    _V2_POINT if name == "location" else _V2_FLOAT if name in _FLOAT_FIELDS else _V2_ANY
    for name in _V2_FIELDS
)
# Fields added after the second digest was sealed (0021: the item, the catalogue revision, the
# item's stage limits), with the value every case had before them. Each is appended, named,
# only when it differs: every state recorded before still reproduces. Not here: the classifier's
# doubt (`classification_uncertain`), advice on what to read first, not a decision.
V2_LATER_FIELDS: dict[str, Any] = {
    "item_code": None,
    "catalogue_revision": 0,
    "accept_hours": None,
    "verify_hours": None,
}
_V2_LATER_PLAN = tuple(
    (name, before, _V2_FLOAT if name.endswith("_hours") else _V2_ANY)
    for name, before in V2_LATER_FIELDS.items()
)


def _v2_text(value: str) -> str:
    return "s" + value.replace("\\", "\\\\").replace(_V2_SEP, "\\x1e")


def _v2_part(value: Any, kind: int) -> str:
    if value is None:
        return "n"
    if kind == _V2_FLOAT:
        return "f" + repr(float(value))
    if kind == _V2_POINT:
        return f"p{float(value.x)!r},{float(value.y)!r}"
    if isinstance(value, str):  # str enums too: their value
        return _v2_text(str.__str__(value))
    if isinstance(value, datetime):
        if value.tzinfo is None:  # as the first digest took it: local time
            value = value.astimezone(UTC)
        return f"t{(value - _EPOCH) // _MICROSECOND}"
    if isinstance(value, Enum):
        return _v2_text(str(value.value))
    if isinstance(value, bool | int):
        return f"i{int(value)}"
    return "j" + _canonical_json(_canonical_field("", value))


def state_digest(case: Any) -> str:
    """SHA-256 of the case's audited state (second format); bound into the row's HMAC by
    `row_digest`."""
    parts = [_V2_TAG]
    for value, kind in zip(_V2_VALUES(case), _V2_KINDS, strict=True):
        kind_of = type(value)
        if kind == _V2_ANY and kind_of is str:  # the common cases first
            parts.append(_v2_text(value))
        elif kind == _V2_ANY and kind_of is int:
            parts.append(f"i{value}")
        elif value is None:
            parts.append("n")
        elif kind_of is datetime and value.tzinfo is not None:
            parts.append(f"t{(value - _EPOCH) // _MICROSECOND}")
        else:
            parts.append(_v2_part(value, kind))
    for name, before, kind in _V2_LATER_PLAN:
        value = getattr(case, name)
        if value != before:
            parts.append(f"{name}={_v2_part(value, kind)}")
    return hashlib.sha256(_V2_SEP.join(parts).encode()).hexdigest()


def state_digests(case: Any) -> tuple[str, str]:
    """The case's state in both formats, for comparing with a row written under either."""
    return state_digest(case), state_digest_v1(case)


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
    state_hash: str | None = None,
) -> str:
    """The per-case link. Rows from before 0003 have no `state_hash` (their digest lacks it)."""
    content: list[Any] = [
        prev_hash,
        case_id,
        seq,
        action,
        from_status,
        to_status,
        actor_id,
        actor_role,
        actor_name,
        _instant(at),
        reason,
        data,
    ]
    if state_hash is not None:
        content.append(state_hash)
    return _hmac(key, _canonical_json(content))


def link_digest(
    *, key: str, gprev_hash: str, gseq: int, prev_case_id: int | None, row_hash: str
) -> str:
    """The global link of a row: its place in the whole log, bound to its per-case hash."""
    return _hmac(key, _canonical_json(["link", gprev_hash, gseq, prev_case_id, row_hash]))


class LegacyAnchor:
    """Where the global chain starts: GENESIS, or a digest of (case id, legacy row count, hash of
    the last legacy row) per case with rows from before 0003, added in case-id order.

    Migration 0003 computes it without the key and stores it as the head; the first linked
    row's HMAC covers it, so from then on it cannot be changed unnoticed."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256(f"{LEGACY_ANCHOR_TAG}\n".encode())
        self._empty = True

    def add(self, case_id: int, count: int, last_hash: str) -> None:
        self._empty = False
        self._digest.update(f"{case_id}:{count}:{last_hash}\n".encode())

    def digest(self) -> str:
        return GENESIS if self._empty else self._digest.hexdigest()


def legacy_anchor(items: Iterable[tuple[int, int, str]]) -> str:
    anchor = LegacyAnchor()
    for case_id, count, last_hash in items:
        anchor.add(case_id, count, last_hash)
    return anchor.digest()


def checkpoint_token(*, key: str, gseq: int, ghash: str) -> str:
    """`GSEQ:HASH:MAC`: the head of the log, signed, to keep somewhere the database is not."""
    mac = _hmac(key, f"{_CHECKPOINT_TAG}:{gseq}:{ghash}")
    return f"{gseq}:{ghash}:{mac}"


def read_checkpoint(token: str, *, key: str) -> tuple[int, str]:
    """(gseq, hash) of a checkpoint; ValueError when malformed or not signed with this key."""
    parts = token.strip().split(":")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) != 64 or len(parts[2]) != 64:
        raise ValueError("a checkpoint looks like GSEQ:HASH:MAC (from `gridgov audit checkpoint`)")
    gseq, ghash, mac = int(parts[0]), parts[1], parts[2]
    expected = _hmac(key, f"{_CHECKPOINT_TAG}:{gseq}:{ghash}")
    if not hmac.compare_digest(expected, mac):
        raise ValueError("the checkpoint's signature does not match (forged, or another key)")
    return gseq, ghash


@dataclass(frozen=True)
class ChainProblem:
    case_id: int | None  # None: the log as a whole (its head, a checkpoint)
    seq: int | None
    problem: str
    case_no: str | None = None


def verify_chain(
    *,
    key: str,
    case_id: int,
    head: str,
    count: int,
    rows: Sequence[Any],
    state: str | Sequence[str] | None = None,
) -> list[ChainProblem]:
    """Problems in one case's chain (empty when intact); rows must be ordered by seq.

    `state`: the digest of the live case row (or its digests in every format, `state_digests`),
    compared with the state its last row recorded.
    """
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
            state_hash=getattr(row, "state_hash", None),
        )
        if not hmac.compare_digest(digest, row.hash):
            problems.append(ChainProblem(case_id, row.seq, "content does not match its hash"))
        prev = row.hash
    if len(rows) != count:
        problems.append(ChainProblem(case_id, None, f"case says {count} rows, found {len(rows)}"))
    if prev != (head or GENESIS):
        problems.append(ChainProblem(case_id, None, "case head hash does not match last row"))
    if state is not None and rows:
        last = rows[-1]
        recorded = getattr(last, "state_hash", None)
        candidates = (state,) if isinstance(state, str) else tuple(state)
        if recorded is not None and not any(
            hmac.compare_digest(recorded, candidate) for candidate in candidates
        ):
            problems.append(
                ChainProblem(
                    case_id,
                    None,
                    f"case row disagrees with the state its last history row (seq {last.seq}) "
                    "recorded: an audited field was changed outside the service",
                )
            )
    return problems


@dataclass(frozen=True)
class LogHead:
    """The `audit_head` row: the last linked row's global sequence, hash and case."""

    gseq: int
    ghash: str
    case_id: int | None


class LinkChecker:
    """Checks the global chain, fed the linked rows in `gseq` order (memory stays flat).

    A gap names the case of the last missing row: each row keeps its predecessor's case id.
    `checkpoint`: a (gseq, hash) read from a signed checkpoint; the log must still hold it.
    """

    def __init__(self, *, key: str, anchor: str, checkpoint: tuple[int, str] | None = None) -> None:
        self._key = key
        self._checkpoint = checkpoint
        self._checkpoint_seen = checkpoint == (0, anchor)
        self._expected = 1
        self._prev = anchor
        self._last_case: int | None = None
        self._last_seq: int | None = None
        self.problems: list[ChainProblem] = []

    def feed(self, row: Any) -> None:
        gseq = row.gseq
        if gseq < self._expected:  # only possible with the unique index dropped
            self.problems.append(
                ChainProblem(row.case_id, row.seq, f"gseq {gseq} appears twice in the log")
            )
            return
        if gseq != self._expected:
            missing = (
                f"gseq {self._expected}"
                if gseq == self._expected + 1
                else f"gseq {self._expected}-{gseq - 1}"
            )
            self.problems.append(
                ChainProblem(
                    row.prev_case_id,
                    None,
                    f"log rows {missing} are missing (the last of them belonged to this case; "
                    f"the log resumes at gseq {gseq}, a row of case {row.case_id})",
                )
            )
        elif row.gprev_hash != self._prev and gseq == 1:
            self.problems.append(
                ChainProblem(
                    None,
                    None,
                    "the history rows from before migration 0003 no longer match the digest "
                    "the log starts from: a legacy row or case was changed or removed",
                )
            )
        elif row.gprev_hash != self._prev:
            self.problems.append(
                ChainProblem(
                    row.case_id, row.seq, f"gseq {gseq} does not link to the row before it"
                )
            )
        elif row.prev_case_id != self._last_case:
            self.problems.append(
                ChainProblem(
                    row.case_id, row.seq, f"gseq {gseq} names another predecessor than the log"
                )
            )
        digest = link_digest(
            key=self._key,
            gprev_hash=row.gprev_hash or "",
            gseq=gseq,
            prev_case_id=row.prev_case_id,
            row_hash=row.hash,
        )
        if not hmac.compare_digest(digest, row.ghash or ""):
            self.problems.append(
                ChainProblem(row.case_id, row.seq, f"gseq {gseq}: its global link was altered")
            )
        if self._checkpoint is not None and gseq == self._checkpoint[0]:
            if row.ghash == self._checkpoint[1]:
                self._checkpoint_seen = True
            else:
                self.problems.append(
                    ChainProblem(
                        row.case_id,
                        row.seq,
                        f"the log differs from the checkpoint at gseq {gseq}: it was rewritten",
                    )
                )
                self._checkpoint = None  # reported
        self._expected = gseq + 1
        self._prev = row.ghash or ""
        self._last_case = row.case_id
        self._last_seq = row.seq

    def finish(self, head: LogHead | None) -> list[ChainProblem]:
        """The head row must be the last linked row; the checkpoint must have been met."""
        last_gseq, last_hash = self._expected - 1, self._prev
        if head is None:
            self.problems.append(ChainProblem(None, None, "the audit_head row is missing"))
        elif (head.gseq, head.ghash) != (last_gseq, last_hash):
            if head.gseq > last_gseq:
                self.problems.append(
                    ChainProblem(
                        head.case_id,
                        None,
                        f"the log ends at gseq {last_gseq} but its head says {head.gseq}: rows "
                        "were cut off the end (the last of them belonged to this case)",
                    )
                )
            else:
                self.problems.append(
                    ChainProblem(
                        self._last_case,
                        self._last_seq,
                        f"the audit head (gseq {head.gseq}) is not the last row of the log "
                        f"(gseq {last_gseq})",
                    )
                )
        if self._checkpoint is not None and not self._checkpoint_seen:
            gseq = self._checkpoint[0]
            if gseq > last_gseq:
                detail = (
                    f"the log was cut back: it ends at gseq {last_gseq}, before the checkpoint "
                    f"at gseq {gseq}"
                )
            elif gseq == 0:
                detail = "the log's start differs from the checkpoint's: it was rewritten"
            else:
                detail = f"the checkpoint's row (gseq {gseq}) is missing from the log"
            self.problems.append(ChainProblem(None, None, detail))
        return self.problems
