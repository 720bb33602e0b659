"""The tamper-evident case log (dispatch.audit): every edit, cut or swap of the chain is caught."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest

from dispatch.audit import GENESIS, ChainProblem, row_digest, verify_chain
from dispatch.models import CaseStatus

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


# --- State digests, the global chain and checkpoints (migration 0003) ---

from types import SimpleNamespace  # noqa: E402

from shapely.geometry import Point  # noqa: E402

from dispatch.audit import (  # noqa: E402
    AUDITED_FIELDS,
    LATER_FIELDS,
    V2_LATER_FIELDS,
    LinkChecker,
    LogHead,
    checkpoint_token,
    legacy_anchor,
    link_digest,
    read_checkpoint,
    state_digest,
    state_digest_v1,
    state_digests,
)

# Both formats of the state digest: the second one writes, the first still verifies.
DIGESTS = pytest.mark.parametrize("digest", [state_digest, state_digest_v1], ids=["v2", "v1"])


def _case_state(**changes: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        **dict.fromkeys(AUDITED_FIELDS),
        **LATER_FIELDS,
        **V2_LATER_FIELDS,
    }
    values.update(
        case_no="20261124000042",
        status="dispatched",
        lat=23.0,
        lng=113.1,
        location=Point(113.1, 23.0),
        department_code="CGJ",
        due_at=T0,
        escalation_level=0,
    )
    values.update(changes)
    return SimpleNamespace(**values)


STATE_CHANGES: dict[str, Any] = {
    "status": "closed",
    "department_code": "ZJJ",
    "due_at": T0 + timedelta(microseconds=1),
    "lat": 23.0000001,
    "location": Point(113.1, 23.1),
    "escalation_level": 1,
    "description": "改过的描述",
}


LATER_CHANGES: dict[str, Any] = {
    "extension_request_hours": 4,
    "extension_seconds": 3600.0,
    "visit_satisfaction": "dissatisfied",
    "visited_at": T0,
    "reopen_until": T0,
    "stage_warn_at": T0,
    "stage_due_at": T0,
    "stage_warning": "red",
    "handling_seconds": 7200.0,
}


@DIGESTS
def test_every_later_field_is_covered_once_it_leaves_its_old_value(
    digest: Callable[[Any], str],
) -> None:
    """Issue 8's columns: a state with all of them at the value they had before they existed
    digests as it always did (the sealed digests below); any other value changes it."""
    assert set(LATER_CHANGES) == set(LATER_FIELDS)
    base = digest(_case_state())
    digests = {digest(_case_state(**{k: v})) for k, v in LATER_CHANGES.items()}
    assert base not in digests
    assert len(digests) == len(LATER_CHANGES)


V2_LATER_CHANGES: dict[str, Any] = {
    "item_code": "0101001",
    "catalogue_revision": 3,
    "accept_hours": 1.5,
    "verify_hours": 24.0,
}


def test_every_field_added_after_the_second_digest_is_covered_once_it_leaves_its_old_value() -> (
    None
):
    """0021's columns: at the value every case had before them, the second digest is what it
    was (the sealed value below); any other value changes it, each differently."""
    assert set(V2_LATER_CHANGES) == set(V2_LATER_FIELDS)
    base = state_digest(_case_state())
    digests = {state_digest(_case_state(**{k: v})) for k, v in V2_LATER_CHANGES.items()}
    assert base not in digests
    assert len(digests) == len(V2_LATER_CHANGES)


@DIGESTS
@pytest.mark.parametrize("field_name", sorted(STATE_CHANGES))
def test_state_digest_changes_with_each_audited_field(
    field_name: str, digest: Callable[[Any], str]
) -> None:
    assert digest(_case_state()) != digest(_case_state(**{field_name: STATE_CHANGES[field_name]}))


# Digests of `_case_state()` as the code before migration 0007 computed them, when the field was
# `source` and a command centre's report was spelled `command_centre`.
SEALED_BEFORE_0007 = {
    "command_centre": "87ac6dbc09db5db195dce322d2e8c4fa9e71356d42b8fdfcffd5e1536c62a8e3",
    "grid_worker": "179220b786740e7d96ed7a800e6bff5ee4ea1117415c916b32a3a9af1643ab8f",
}


@pytest.mark.parametrize(
    ("channel", "source"), [("dispatcher", "command_centre"), ("grid_worker", "grid_worker")]
)
def test_state_digest_of_a_channel_is_the_one_sealed_as_its_source(
    channel: str, source: str
) -> None:
    """0007 renamed and respelled the column; states sealed before must still verify."""
    assert state_digest_v1(_case_state(channel=channel)) == SEALED_BEFORE_0007[source]


@DIGESTS
def test_state_digest_changes_with_the_channel(digest: Callable[[Any], str]) -> None:
    digests = {digest(_case_state(channel=c)) for c in ("grid_worker", "wechat", "open311")}
    assert len(digests | {digest(_case_state(channel="dispatcher"))}) == 4


@DIGESTS
def test_state_digest_ignores_bookkeeping_and_representation(
    digest: Callable[[Any], str],
) -> None:
    base = _case_state()
    again = _case_state(
        due_at=T0.astimezone(timezone(timedelta(hours=8))),
        lat=23,
        escalation_level=0,
        status=CaseStatus.DISPATCHED,
    )
    again.next_check_at, again.updated_at, again.version = T0, T0, 9
    assert digest(again) == digest(base)


# The second format, of `_case_state()`: sealed like the first one's above, so a change to it
# (which would leave every case swept or changed since unverifiable) fails here first.
SEALED_V2 = "5e449a0ce113c15354065785eb3ae55eb65cd3f94c490f9a583823433b1b036f"


def test_the_second_state_digest_is_sealed() -> None:
    assert state_digest(_case_state()) == SEALED_V2


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"description": None}, {"description": "n"}),  # None is not a string that reads "n"
        ({"description": "1"}, {"description": None, "extension_count": 1}),
        # A separator inside a string does not shift the fields after it.
        ({"description": "a\x1esb", "grid_rule": None}, {"description": "a", "grid_rule": "b"}),
        ({"description": "a\\x1esb", "grid_rule": None}, {"description": "a", "grid_rule": "b"}),
        ({"reporter_id": 12}, {"reporter_id": "12"}),
    ],
)
def test_the_second_state_digest_tells_values_apart(
    one: dict[str, Any], other: dict[str, Any]
) -> None:
    assert state_digest(_case_state(**one)) != state_digest(_case_state(**other))


def test_a_last_row_sealed_with_either_format_verifies_and_still_binds_the_state() -> None:
    """Rows written before the second format carry the first one: the live case is compared
    with both, so an unchanged case verifies and an edited one is caught whichever it is."""
    for sealed in state_digests(_case_state()):
        step = {**STEPS[0], "state_hash": sealed}
        digest = row_digest(key=KEY, prev_hash=GENESIS, case_id=CASE_ID, seq=1, at=T0, **step)
        row = SimpleNamespace(case_id=CASE_ID, seq=1, at=T0, prev_hash=GENESIS, hash=digest, **step)
        live = state_digests(_case_state())
        assert (
            verify_chain(key=KEY, case_id=CASE_ID, head=digest, count=1, rows=[row], state=live)
            == []
        )
        edited = state_digests(_case_state(status="closed"))
        problems = verify_chain(
            key=KEY, case_id=CASE_ID, head=digest, count=1, rows=[row], state=edited
        )
        assert [p.problem.startswith("case row disagrees") for p in problems] == [True]


def test_a_row_with_a_state_digest_verifies_and_binds_the_state() -> None:
    step = {**STEPS[0], "state_hash": state_digest(_case_state())}
    digest = row_digest(key=KEY, prev_hash=GENESIS, case_id=CASE_ID, seq=1, at=T0, **step)
    row = Row(case_id=CASE_ID, seq=1, at=T0, hash=digest, **STEPS[0])
    linked = SimpleNamespace(**{**row.__dict__, "state_hash": step["state_hash"]})
    ok = verify_chain(
        key=KEY, case_id=CASE_ID, head=digest, count=1, rows=[linked], state=step["state_hash"]
    )
    assert ok == []
    edited = state_digest(_case_state(status="closed"))
    problems = verify_chain(
        key=KEY, case_id=CASE_ID, head=digest, count=1, rows=[linked], state=edited
    )
    assert [p.problem.startswith("case row disagrees") for p in problems] == [True]


def _linked_log(case_ids: list[int], anchor: str = GENESIS) -> list[SimpleNamespace]:
    rows, prev, prev_case = [], anchor, None
    for gseq, case_id in enumerate(case_ids, start=1):
        row_hash = f"{gseq:064x}"
        ghash = link_digest(
            key=KEY, gprev_hash=prev, gseq=gseq, prev_case_id=prev_case, row_hash=row_hash
        )
        rows.append(
            SimpleNamespace(
                case_id=case_id,
                seq=gseq,
                gseq=gseq,
                gprev_hash=prev,
                prev_case_id=prev_case,
                hash=row_hash,
                ghash=ghash,
            )
        )
        prev, prev_case = ghash, case_id
    return rows


def _check_log(
    rows: list[SimpleNamespace], head: LogHead | None, checkpoint: tuple[int, str] | None = None
) -> list[ChainProblem]:
    checker = LinkChecker(key=KEY, anchor=GENESIS, checkpoint=checkpoint)
    for row in rows:
        checker.feed(row)
    return checker.finish(head)


LOG = _linked_log([1, 2, 3, 2, 1])
LOG_HEAD = LogHead(5, LOG[-1].ghash, 1)


def test_an_intact_global_log_has_no_problems() -> None:
    assert _check_log(LOG, LOG_HEAD, checkpoint=(3, LOG[2].ghash)) == []


def test_a_removed_row_is_named_by_the_case_it_belonged_to() -> None:
    problems = _check_log(LOG[:2] + LOG[3:], LOG_HEAD)
    assert [(p.case_id, p.problem.split(" (")[0]) for p in problems] == [
        (3, "log rows gseq 3 are missing")
    ]


def test_rows_cut_off_the_end_are_named_by_the_head() -> None:
    problems = _check_log(LOG[:4], LOG_HEAD)
    assert [p.case_id for p in problems] == [1]
    assert "cut off the end" in problems[0].problem


def test_a_checkpoint_past_the_end_shows_a_cut_back_log() -> None:
    rest = LOG[:3]
    problems = _check_log(rest, LogHead(3, rest[-1].ghash, 3), checkpoint=(4, LOG[3].ghash))
    assert [p.problem.split(":")[0] for p in problems] == ["the log was cut back"]


def test_a_changed_global_link_is_caught() -> None:
    rows = list(LOG)
    rows[1] = SimpleNamespace(**{**rows[1].__dict__, "prev_case_id": 3})
    assert [p.case_id for p in _check_log(rows, LOG_HEAD)] == [2, 2]


def test_checkpoints_round_trip_and_refuse_forgeries() -> None:
    token = checkpoint_token(key=KEY, gseq=5, ghash=LOG[-1].ghash)
    assert read_checkpoint(token, key=KEY) == (5, LOG[-1].ghash)
    gseq, ghash, mac = token.split(":")
    for forged in (f"6:{ghash}:{mac}", f"{gseq}:{'1' * 64}:{mac}", f"{gseq}:{ghash}", "x"):
        with pytest.raises(ValueError, match="checkpoint"):
            read_checkpoint(forged, key=KEY)
    with pytest.raises(ValueError, match="signature"):
        read_checkpoint(token, key="another-key")


def test_legacy_anchor_is_genesis_without_legacy_rows_and_depends_on_each_case() -> None:
    assert legacy_anchor([]) == GENESIS
    one = legacy_anchor([(1, 2, "a" * 64), (2, 1, "b" * 64)])
    assert one != legacy_anchor([(1, 2, "a" * 64)])
    assert one != legacy_anchor([(1, 1, "a" * 64), (2, 1, "b" * 64)])
