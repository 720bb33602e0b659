"""The tamper-evident case log (dispatch.audit): every edit, cut or swap of the chain is caught."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from dispatch.audit import GENESIS, ChainProblem, row_digest, verify_chain

KEY = "audit-key-for-tests"
CASE_ID = 42
T0 = datetime(2026, 11, 24, 1, 0, 0, 123456, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    """The attributes of a case_history row that verify_chain reads."""

    case_id: int
    seq: int
    action: str
    from_status: str | None
    to_status: str
    actor_id: int | None
    actor_role: str
    actor_name: str
    at: datetime
    reason: str | None
    data: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""


STEPS: list[dict[str, Any]] = [
    {
        "action": "report",
        "from_status": None,
        "to_status": "reported",
        "actor_id": 7,
        "actor_role": "grid_worker",
        "actor_name": "张三",
        "reason": None,
        "data": {"grid_code": "440604010001001", "lng": 113.1, "lat": 23.0},
    },
    {
        "action": "register",
        "from_status": "reported",
        "to_status": "registered",
        "actor_id": 2,
        "actor_role": "dispatcher",
        "actor_name": "李四",
        "reason": None,
        "data": {},
    },
    {
        "action": "dispatch",
        "from_status": "registered",
        "to_status": "dispatched",
        "actor_id": 2,
        "actor_role": "dispatcher",
        "actor_name": "李四",
        "reason": "属地管理",
        "data": {"department": "CC-CG", "due_at": "2026-11-24T08:00:00+00:00"},
    },
    {
        "action": "return",
        "from_status": "dispatched",
        "to_status": "registered",
        "actor_id": None,
        "actor_role": "system",
        "actor_name": "system",
        "reason": "退单: 不属本单位",
        "data": {"returns": 1},
    },
]


def build_chain(key: str = KEY, case_id: int = CASE_ID) -> list[Row]:
    rows: list[Row] = []
    prev = GENESIS
    for seq, step in enumerate(STEPS, start=1):
        at = T0 + timedelta(minutes=17 * seq)
        digest = row_digest(key=key, prev_hash=prev, case_id=case_id, seq=seq, at=at, **step)
        rows.append(Row(case_id=case_id, seq=seq, at=at, prev_hash=prev, hash=digest, **step))
        prev = digest
    return rows


def check(rows: list[Row], *, head: str, count: int, key: str = KEY) -> list[ChainProblem]:
    return verify_chain(key=key, case_id=CASE_ID, head=head, count=count, rows=rows)


CHAIN = build_chain()
HEAD = CHAIN[-1].hash
COUNT = len(CHAIN)

# A different value for every field verify_chain reads.
CHANGES: dict[str, Any] = {
    "case_id": CASE_ID + 1,
    "seq": 99,
    "action": "close",
    "from_status": "closed",
    "to_status": "closed",
    "actor_id": 1000,
    "actor_role": "admin",
    "actor_name": "王五",
    "at": T0 + timedelta(days=1),
    "reason": "篡改",
    "data": {"forged": True},
    "prev_hash": "f" * 64,
    "hash": "e" * 64,
}


def test_intact_chain_has_no_problems() -> None:
    assert check(CHAIN, head=HEAD, count=COUNT) == []


def test_chain_starts_from_genesis() -> None:
    assert CHAIN[0].prev_hash == GENESIS == "0" * 64
    assert all(later.prev_hash == earlier.hash for earlier, later in pairwise(CHAIN))


@pytest.mark.parametrize("head", ["", GENESIS])
def test_case_without_history_is_intact(head: str) -> None:
    assert check([], head=head, count=0) == []


def test_digest_is_a_sha256_hex_string() -> None:
    assert len(HEAD) == 64
    assert int(HEAD, 16) >= 0


def test_digest_is_deterministic() -> None:
    assert [r.hash for r in build_chain()] == [r.hash for r in CHAIN]


def test_digest_ignores_key_order_of_data() -> None:
    step = {**STEPS[0], "data": {"lat": 23.0, "lng": 113.1, "grid_code": "440604010001001"}}
    digest = row_digest(key=KEY, prev_hash=GENESIS, case_id=CASE_ID, seq=1, at=T0, **step)
    again = row_digest(
        key=KEY,
        prev_hash=GENESIS,
        case_id=CASE_ID,
        seq=1,
        at=T0,
        **{**step, "data": dict(reversed(list(step["data"].items())))},
    )
    assert digest == again


def test_digest_depends_on_the_key() -> None:
    assert [r.hash for r in build_chain(key="another-key")] != [r.hash for r in CHAIN]


@pytest.mark.parametrize("index", range(len(CHAIN)))
@pytest.mark.parametrize("field_name", sorted(CHANGES))
def test_changing_any_field_of_any_row_is_detected(index: int, field_name: str) -> None:
    rows = list(CHAIN)
    assert getattr(rows[index], field_name) != CHANGES[field_name]
    rows[index] = dataclasses.replace(rows[index], **{field_name: CHANGES[field_name]})
    problems = check(rows, head=HEAD, count=COUNT)
    assert problems
    assert all(p.case_id == CASE_ID for p in problems)


@pytest.mark.parametrize("index", range(len(CHAIN)))
def test_changed_row_is_the_first_one_reported(index: int) -> None:
    rows = list(CHAIN)
    rows[index] = dataclasses.replace(rows[index], reason="篡改")
    problems = check(rows, head=HEAD, count=COUNT)
    assert [p.seq for p in problems] == [index + 1]
    assert problems[0].problem == "content does not match its hash"


def test_changing_the_time_by_one_microsecond_is_detected() -> None:
    rows = list(CHAIN)
    rows[1] = dataclasses.replace(rows[1], at=rows[1].at + timedelta(microseconds=1))
    assert check(rows, head=HEAD, count=COUNT)


def test_changing_a_nested_value_in_data_is_detected() -> None:
    rows = list(CHAIN)
    rows[2] = dataclasses.replace(rows[2], data={**rows[2].data, "department": "CC-SW"})
    assert check(rows, head=HEAD, count=COUNT)


def test_rewritten_row_with_recomputed_hash_breaks_the_link_to_the_next_row() -> None:
    """Without rewriting every later row (and the case head), a forged row still shows."""
    rows = list(CHAIN)
    forged = dataclasses.replace(rows[1], reason="篡改")
    fields = {f: getattr(forged, f) for f in STEPS[0]}
    forged = dataclasses.replace(
        forged,
        hash=row_digest(
            key=KEY, prev_hash=forged.prev_hash, case_id=CASE_ID, seq=2, at=forged.at, **fields
        ),
    )
    rows[1] = forged
    problems = check(rows, head=HEAD, count=COUNT)
    assert ChainProblem(CASE_ID, 3, "prev_hash does not link") in problems


def test_deleting_a_middle_row_is_detected() -> None:
    rows = CHAIN[:1] + CHAIN[2:]
    problems = check(rows, head=HEAD, count=COUNT)
    assert ChainProblem(CASE_ID, 3, "expected seq 2") in problems
    assert ChainProblem(CASE_ID, 3, "prev_hash does not link") in problems
    assert any(p.seq is None for p in problems)  # count mismatch


def test_deleting_a_middle_row_is_detected_even_with_matching_count() -> None:
    rows = CHAIN[:1] + CHAIN[2:]
    assert check(rows, head=HEAD, count=len(rows))


@pytest.mark.parametrize(("i", "j"), [(0, 1), (1, 2), (2, 3), (0, 3)])
def test_reordering_rows_is_detected(i: int, j: int) -> None:
    rows = list(CHAIN)
    rows[i], rows[j] = rows[j], rows[i]
    assert check(rows, head=HEAD, count=COUNT)


def test_truncating_the_last_row_is_detected_by_head_and_count() -> None:
    problems = check(CHAIN[:-1], head=HEAD, count=COUNT)
    assert problems == [
        ChainProblem(CASE_ID, None, f"case says {COUNT} rows, found {COUNT - 1}"),
        ChainProblem(CASE_ID, None, "case head hash does not match last row"),
    ]


def test_truncating_every_row_is_detected() -> None:
    assert len(check([], head=HEAD, count=COUNT)) == 2


def test_appending_a_row_not_recorded_in_the_case_is_detected() -> None:
    extra = build_chain()
    problems = check(extra, head=CHAIN[-2].hash, count=COUNT - 1)
    assert problems


def test_verifying_with_another_key_flags_every_row() -> None:
    problems = check(CHAIN, head=HEAD, count=COUNT, key="another-key")
    assert [p.seq for p in problems] == [1, 2, 3, 4]
    assert {p.problem for p in problems} == {"content does not match its hash"}


def test_chain_built_with_another_key_does_not_verify() -> None:
    forged = build_chain(key="guessed-key")
    assert check(forged, head=forged[-1].hash, count=len(forged))
