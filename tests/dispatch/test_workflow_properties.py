"""Property: random actions by random people on random cases, with time passing and sweeps,
never break the transition table, never lose a history row, and the audit log stays intact.

Runs through HTTP on the test's own database per backend (its examples share it and one clock
that only moves forward; each example files its own cases).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, col

from core.db import session_scope
from dispatch import service as dispatch_service
from dispatch.actions import TRANSITIONS as RULES
from dispatch.followup import MAX_REQUEST_HOURS
from dispatch.models import CaseStatus, Department
from dispatch.tasks import run_sweep
from dispatch.workflow import Action, Party
from grid.coords import wgs84_to_gcj02
from tests.conftest import SECRET, OwnApp, new_client_id
from tests.dispatch.test_case_card import card_mismatches
from tests.dispatch.test_case_due import due_queue_mismatches

GRIDS = ("440604011001001", "440604011001002")
WHO = ("dispatcher", "right_department", "wrong_department", "right_worker", "wrong_worker")
SLA_ACTIONS = frozenset(
    {"sla_warning", "sla_overdue", "sla_escalated", "sla_cleared", "stage_warning", "stage_overdue"}
)


# `recategorize` always names 0806 (公共厕所问题), 城管局's.
RECATEGORIZED_SUBCATEGORY, RECATEGORIZED_UNIT = "0806", "CGJ"
SATISFACTION = {True: "satisfied", False: "dissatisfied"}


def _target(action: Action, before: dict[str, Any], passed: bool | None) -> str:
    """The status a successful action leads to, by the transition table's meaning."""
    fixed = {
        Action.REGISTER: CaseStatus.REGISTERED,
        Action.REJECT: CaseStatus.REJECTED,
        Action.DISPATCH: CaseStatus.DISPATCHED,
        Action.ACCEPT: CaseStatus.ACCEPTED,
        Action.RETURN: CaseStatus.REGISTERED,
        Action.SUSPEND: CaseStatus.SUSPENDED,
        Action.RESOLVE: CaseStatus.RESOLVED,
        Action.CLOSE: CaseStatus.CLOSED,
        Action.REOPEN: CaseStatus.DISPATCHED,
        Action.MERGE: CaseStatus.MERGED,
    }
    if action in fixed:
        return str(fixed[action])
    if action is Action.VERIFY:
        return str(CaseStatus.VERIFIED if passed else CaseStatus.DISPATCHED)
    if action is Action.RESUME:  # back where it was suspended from
        suspends = [h for h in before["history"] if h["action"] == "suspend"]
        return str(suspends[-1]["from_status"])
    if action is Action.RECATEGORIZE and before["department_code"] != RECATEGORIZED_UNIT:
        if before["dispatched_at"] is not None:  # the new unit must accept
            return str(CaseStatus.DISPATCHED)
    return str(before["status"])  # extend, supervise, extension requests, visit


@dataclass(frozen=True)
class Step:
    wait_minutes: int
    kind: str  # an Action, "sweep" or "report"
    case: int
    who: str
    reason: bool
    note: bool
    passed: bool | None
    amount: float
    other: int


PARTY_WHO = {
    Party.COMMAND_CENTRE: "dispatcher",
    Party.DEPARTMENT: "right_department",
    Party.GRID_WORKER: "right_worker",
}


def _draw_step(data: st.DataObject, world: World) -> Step:
    """Mostly what the table allows, by the right person with what it needs; sometimes not."""
    wait = data.draw(st.sampled_from([0, 5, 45, 180, 600, 1500]), label="wait minutes")
    roll = data.draw(st.integers(0, 19), label="roll")
    if roll == 0:
        return Step(wait, "sweep", 0, "dispatcher", True, True, True, 1.0, 0)
    if roll == 1:
        return Step(
            wait, "report", data.draw(st.integers(0, 1)), "dispatcher", True, True, True, 1.0, 0
        )
    case = data.draw(st.integers(0, len(world.cases) - 1), label="case")
    status = world.cases[case]["status"]
    allowed = [a for a in Action if status in RULES[a].sources]
    onward = [a for a in allowed if a not in (Action.REJECT, Action.MERGE)]
    if roll < 13 and onward:  # mostly along the loop, so that cases get far
        action = data.draw(st.sampled_from(onward), label="onward action")
    elif roll < 15 and allowed:
        action = data.draw(st.sampled_from(allowed), label="allowed action")
    else:
        action = data.draw(st.sampled_from(list(Action)), label="any action")
    right = PARTY_WHO[RULES[action].party]
    who = right if roll < 12 else data.draw(st.sampled_from(WHO), label="who")
    complete = roll < 17
    return Step(
        wait_minutes=wait,
        kind=str(action),
        case=case,
        who=who,
        reason=complete or data.draw(st.booleans()),
        note=complete or data.draw(st.booleans()),
        passed=data.draw(st.sampled_from([True, False] if complete else [True, False, None])),
        amount=data.draw(st.sampled_from([1.0, 2.0] if complete else [0.0, 1.0])),
        other=data.draw(st.integers(0, len(world.cases) - 1), label="other case"),
    )


def _party_of(who: str) -> Party | None:
    return {
        "dispatcher": Party.COMMAND_CENTRE,
        "right_department": Party.DEPARTMENT,
        "right_worker": Party.GRID_WORKER,
    }.get(who)


def _history_key(history: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(h["action"], h["from_status"], h["to_status"], h["at"]) for h in history]


class World:
    def __init__(self, app: OwnApp, point: Callable[[str], tuple[float, float]]) -> None:
        self.app = app
        self.api = app.api
        self.point = point
        with Session(app.engine) as session:
            self.departments = sorted(session.execute(select(col(Department.code))).scalars())
        self.cases: list[dict[str, Any]] = []

    def report(self, grid: str) -> None:
        lng, lat = wgs84_to_gcj02(*self.point(grid))
        body = {
            "client_id": new_client_id(),
            "lat": lat,
            "lng": lng,
            "crs": "gcj02",
            "description": "路口井盖丢失，很危险",
        }
        res = self.api.post(f"gw{grid}", "/v1/reports", body)
        assert res.status_code == 201, res.text
        self.cases.append(self.read(res.json()["id"]))

    def read(self, case_id: int) -> dict[str, Any]:
        res = self.api.get("dispatcher", f"/v1/cases/{case_id}")
        assert res.status_code == 200, res.text
        case: dict[str, Any] = res.json()
        return case

    def username(self, who: str, case: dict[str, Any]) -> str:
        department: str = case["department_code"]
        grid: str = case["grid_code"]
        names: dict[str, str] = {
            "dispatcher": "dispatcher",
            "right_department": f"dept-{department.lower()}",
            "wrong_department": "dept-"
            + next(d for d in self.departments if d != department).lower(),
            "right_worker": f"gw{grid}",
            "wrong_worker": f"gw{next(g for g in GRIDS if g != grid)}",
        }
        return names[who]

    def sweep(self) -> None:
        runtime = self.api.client.app.state.runtime  # type: ignore[attr-defined]
        run_sweep(
            self.app.engine,
            now=self.api.clock.now,
            calendars=runtime.calendars,
            policy=runtime.policy,
        )
        for i, before in enumerate(self.cases):
            after = self.read(before["id"])
            old, new = _history_key(before["history"]), _history_key(after["history"])
            assert new[: len(old)] == old, "a sweep changed or lost history"
            assert {h[0] for h in new[len(old) :]} <= SLA_ACTIONS
            assert after["status"] == before["status"]
            self.cases[i] = after

    def act(self, step: Step) -> None:
        index = step.case % len(self.cases)
        before = self.cases[index]
        action = Action(step.kind)
        body: dict[str, Any] = {}
        if step.reason:
            body["reason"] = "属实"
        if step.note:
            body["note"] = "已处理"
        if action is Action.VERIFY and step.passed is not None:
            body["passed"] = step.passed
        if action is Action.EXTEND:
            body["amount"] = step.amount
        if action is Action.REQUEST_EXTENSION:
            body["hours"] = int(step.amount)
        if action is Action.VISIT and step.passed is not None:
            body["satisfaction"] = SATISFACTION[step.passed]
        if action is Action.RECATEGORIZE:
            body["subcategory_code"] = RECATEGORIZED_SUBCATEGORY
        target_index = step.other % len(self.cases)
        if action is Action.MERGE:
            body["into_case_id"] = self.cases[target_index]["id"]
        target_before = self.cases[target_index]
        username = self.username(step.who, before)
        res = self.api.post(username, f"/v1/cases/{before['id']}/{action}", body)
        assert res.status_code < 500, res.text
        rule = RULES[action]
        permitted = _party_of(step.who) is rule.party
        max_ext = self.api.client.app.state.runtime.policy.max_extensions  # type: ignore[attr-defined]
        refusal = _refusal(action, step, before, target_before, max_ext, self.api.clock.now)
        old = _history_key(before["history"])
        event(f"{action} -> {res.status_code}")
        if res.status_code == 200:
            after = res.json()
            assert permitted
            assert before["status"] in rule.sources
            assert refusal is None, refusal
            assert after["status"] == _target(action, before, step.passed)
            new = _history_key(after["history"])
            assert new[: len(old)] == old, "history changed or lost"
            added = new[len(old) :]
            assert added[0][:3] == (str(action), before["status"], after["status"])
            assert {a[0] for a in added[1:]} <= SLA_ACTIONS
            self.cases[index] = self.read(before["id"])
            assert _history_key(self.cases[index]["history"]) == new  # as committed
            if action is Action.MERGE:
                target = self.read(target_before["id"])
                t_old, t_new = (
                    _history_key(target_before["history"]),
                    _history_key(target["history"]),
                )
                assert t_new[: len(t_old)] == t_old
                assert [a[0] for a in t_new[len(t_old) :]] == ["merged_from"]
                assert target["status"] == target_before["status"]
                self.cases[target_index] = target
            return
        error = res.json()["error"]
        if not permitted:
            assert (res.status_code, error) == (403, "not_permitted"), res.text
        elif before["status"] not in rule.sources:
            assert (res.status_code, error) == (409, "illegal_transition"), res.text
        else:
            assert (res.status_code, error) == refusal, res.text
        after = self.read(before["id"])
        assert _history_key(after["history"]) == old, "a refused action left history"
        assert after["status"] == before["status"]
        assert after["version"] == before["version"]


def _refusal(
    action: Action,
    step: Step,
    before: dict[str, Any],
    target: dict[str, Any],
    max_ext: int,
    now: datetime,
) -> tuple[int, str] | None:
    """Why the right person's action from a right status is refused, or None: it goes through.
    The row's own check comes first (a request to answer; a closed case's reopen window), then
    the fields in the table's order (reason, note, then the action's own), then the action's
    own rules (extension limit, amount and hours; the merge target)."""
    needs = RULES[action].needs
    pending = before["extension_request_hours"]
    if action in (Action.APPROVE_EXTENSION, Action.DENY_EXTENSION) and pending is None:
        return 409, "no_extension_request"
    if action is Action.REOPEN and before["status"] == CaseStatus.CLOSED:
        until = before["reopen_until"]
        if until is None or now > datetime.fromisoformat(until):
            return 409, "reopen_refused"
    if "reason" in needs and not step.reason:
        return 422, "reason_required"
    if "note" in needs and not step.note:
        return 422, "note_required"
    if action is Action.VERIFY:
        if step.passed is None:
            return 422, "passed_required"
        if not step.passed and not step.reason:  # a failed check (重办) says why
            return 422, "reason_required"
    if action is Action.EXTEND:
        if before["extension_count"] >= max_ext:
            return 409, "extension_limit"
        limit = max(before["time_limit"]["value"], 1) * 10
        if not (step.amount.is_integer() and 0 < step.amount <= limit):
            return 422, "invalid_amount"
    if action is Action.VISIT and step.passed is None:
        return 422, "satisfaction_required"
    if action is Action.REQUEST_EXTENSION:
        if pending is not None:
            return 409, "extension_pending"
        if before["extension_count"] >= max_ext:
            return 409, "extension_limit"
        if not 0 < int(step.amount) <= MAX_REQUEST_HOURS:
            return 422, "invalid_hours"
    if action is Action.APPROVE_EXTENSION and before["extension_count"] >= max_ext:
        return 409, "extension_limit"
    if action is Action.MERGE:
        if target["id"] == before["id"]:
            return 422, "invalid_merge"
        if target["status"] in (CaseStatus.REJECTED, CaseStatus.MERGED, CaseStatus.CLOSED):
            return 409, "illegal_transition"
    return None


def _transitions_follow_the_table(history: list[dict[str, Any]]) -> None:
    status = None
    for entry in history:
        assert entry["from_status"] == status, entry
        if entry["action"] in Action.__members__.values():
            assert entry["from_status"] in RULES[Action(entry["action"])].sources, entry
        else:  # report, merged_from, SLA: no change of status
            assert entry["action"] == "report" or entry["to_status"] == status, entry
        status = entry["to_status"]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_actions_keep_the_table_the_history_and_the_audit_log(
    own_app: OwnApp, demo_points: Any, data: st.DataObject
) -> None:
    world = World(own_app, demo_points)
    for grid in data.draw(st.lists(st.sampled_from(GRIDS), min_size=1, max_size=2), label="cases"):
        world.report(grid)
    for _ in range(data.draw(st.integers(4, 24), label="steps")):
        step = _draw_step(data, world)
        own_app.api.clock.advance(minutes=step.wait_minutes)
        if step.kind == "sweep":
            world.sweep()
        elif step.kind == "report":
            world.report(GRIDS[step.case % 2])
        else:
            world.act(step)
    for case in world.cases:
        final = world.read(case["id"])
        assert final["status"] in {str(s) for s in CaseStatus}
        _transitions_follow_the_table(final["history"])
    engine = dispatch_service.audit_reader(own_app.engine)
    with session_scope(engine) as session:
        problems, _ = dispatch_service.verify_audit(session, key=SECRET)
    assert problems == []
    assert due_queue_mismatches(own_app.engine) == []
    assert card_mismatches(own_app.engine) == []
