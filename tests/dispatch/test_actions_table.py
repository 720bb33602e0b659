"""The transition table (dispatch.actions.TRANSITIONS) against the API, on SQLite and PostGIS:
every row is driven from each of its source statuses, and for every role the case's `actions`
are exactly the actions the API then accepts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dispatch import service as dispatch_service
from dispatch.actions import TRANSITIONS
from dispatch.changes import CaseEvent
from dispatch.models import CaseStatus
from dispatch.workflow import Action, Party
from grid.coords import wgs84_to_gcj02
from tests.conftest import Api, new_client_id

GRID = "440604011001001"
OTHER_GRID = "440604011001002"
PARTY_USER = {
    Party.COMMAND_CENTRE: "dispatcher",
    Party.DEPARTMENT: "dept-cgj",  # the unit a manhole report goes to
    Party.GRID_WORKER: f"gw{GRID}",
}
ROLES = ("dispatcher", "admin", "dept-cgj", "dept-sthj", f"gw{GRID}", f"gw{OTHER_GRID}")
# The party each account is to the test's cases (all routed to 城管局 in GRID): another unit
# and another grid's worker are none.
ACTS_AS = {
    "dispatcher": Party.COMMAND_CENTRE,
    "admin": Party.COMMAND_CENTRE,
    "dept-cgj": Party.DEPARTMENT,
    f"gw{GRID}": Party.GRID_WORKER,
}
# Who sees a case: the command centre and the grid's worker always, its unit once dispatched.
SEEN_BY = {"dispatcher", "admin", f"gw{GRID}"}
DISPATCHED_ONWARD = {
    CaseStatus.DISPATCHED,
    CaseStatus.ACCEPTED,
    CaseStatus.SUSPENDED,
    CaseStatus.RESOLVED,
    CaseStatus.VERIFIED,
    CaseStatus.CLOSED,
}

# Valid fields for each action: a row missing here fails `test_every_row_has_valid_fields`
# and its driving test below, so no row goes unexercised.
VALID_FIELDS: dict[Action, dict[str, Any]] = {
    Action.REGISTER: {},
    Action.REJECT: {"reason": "重复上报"},
    Action.DISPATCH: {},
    Action.ACCEPT: {},
    Action.RETURN: {"reason": "非本单位职责"},
    Action.EXTEND: {"reason": "需要协调", "amount": 1.0},
    Action.SUSPEND: {"reason": "等待配件"},
    Action.RESUME: {},
    Action.RESOLVE: {"note": "已处理"},
    Action.VERIFY: {"passed": True},
    Action.CLOSE: {},
    Action.REOPEN: {"reason": "居民不满意"},
    Action.MERGE: {},  # into_case_id: a fresh case, given at the call
    Action.SUPERVISE: {"note": "请加快处理"},
    Action.REQUEST_EXTENSION: {"reason": "需要协调", "hours": 8},
    Action.APPROVE_EXTENSION: {},
    Action.DENY_EXTENSION: {"reason": "理由不足"},
    Action.VISIT: {"satisfaction": "dissatisfied", "note": "居民认为未修好"},
    Action.RECATEGORIZE: {"reason": "分类有误", "subcategory_code": "0806"},  # same unit
}

# Rows whose own check needs an earlier step, per source (None: any): that step, and the
# error the row answers without it.
PREPARED_BY: dict[tuple[Action, CaseStatus | None], tuple[Action, str]] = {
    (Action.APPROVE_EXTENSION, None): (Action.REQUEST_EXTENSION, "no_extension_request"),
    (Action.DENY_EXTENSION, None): (Action.REQUEST_EXTENSION, "no_extension_request"),
    (Action.REOPEN, CaseStatus.CLOSED): (Action.VISIT, "reopen_refused"),
}


def preparation(action: Action, status: CaseStatus) -> tuple[Action, str] | None:
    return PREPARED_BY.get((action, None)) or PREPARED_BY.get((action, status))


# How a new case reaches each status, step by step (the actor is the row's party).
PATHS: dict[CaseStatus, list[Action]] = {
    CaseStatus.REPORTED: [],
    CaseStatus.REGISTERED: [Action.REGISTER],
    CaseStatus.DISPATCHED: [Action.REGISTER, Action.DISPATCH],
    CaseStatus.ACCEPTED: [Action.REGISTER, Action.DISPATCH, Action.ACCEPT],
    CaseStatus.SUSPENDED: [Action.REGISTER, Action.DISPATCH, Action.SUSPEND],
    CaseStatus.RESOLVED: [Action.REGISTER, Action.DISPATCH, Action.ACCEPT, Action.RESOLVE],
    CaseStatus.VERIFIED: [
        *[Action.REGISTER, Action.DISPATCH, Action.ACCEPT, Action.RESOLVE, Action.VERIFY]
    ],
    CaseStatus.CLOSED: [
        *[Action.REGISTER, Action.DISPATCH, Action.ACCEPT, Action.RESOLVE, Action.VERIFY],
        Action.CLOSE,
    ],
}


class Calls:
    """HTTP calls as the demo accounts, one token each."""

    def __init__(self, api: Api, point: Callable[[str], tuple[float, float]]) -> None:
        self.api = api
        self.point = point
        self.headers: dict[str, dict[str, str]] = {}

    def _headers(self, who: str) -> dict[str, str]:
        if who not in self.headers:
            self.headers[who] = self.api.headers(who)
        return self.headers[who]

    def post(self, who: str, path: str, body: dict[str, Any]) -> Any:
        return self.api.client.post(path, json=body, headers=self._headers(who))

    def get(self, who: str, path: str) -> Any:
        return self.api.client.get(path, headers=self._headers(who))

    def report(self) -> int:
        g_lng, g_lat = wgs84_to_gcj02(*self.point(GRID))
        body = {"client_id": new_client_id(), "lat": g_lat, "lng": g_lng, "crs": "gcj02"}
        res = self.post(f"gw{GRID}", "/v1/reports", {**body, "description": "路口井盖丢失"})
        assert res.status_code == 201, res.text
        return int(res.json()["id"])

    def fields(self, action: Action) -> dict[str, Any]:
        if action is Action.MERGE:
            return {"into_case_id": self.report()}
        return VALID_FIELDS[action]

    def act(self, who: str, case_id: int, action: Action) -> Any:
        return self.post(who, f"/v1/cases/{case_id}/{action}", self.fields(action))

    def case_in(self, status: CaseStatus, ready_for: Action | None = None) -> int:
        """A new case in `status`; with `ready_for`, also the step that row's check needs."""
        case_id = self.report()
        steps = list(PATHS[status])
        prepared = None if ready_for is None else preparation(ready_for, status)
        if prepared is not None:
            steps.append(prepared[0])
        for action in steps:
            res = self.act(PARTY_USER[TRANSITIONS[action].party], case_id, action)
            assert res.status_code == 200, (action, res.text)
        return case_id


@pytest.fixture
def calls(api: Api, demo_points: Callable[[str], tuple[float, float]]) -> Calls:
    return Calls(api, demo_points)


def test_every_row_has_valid_fields_and_every_source_a_path() -> None:
    assert set(VALID_FIELDS) == set(TRANSITIONS)
    for transition in TRANSITIONS.values():
        assert transition.needs <= set(VALID_FIELDS[action_of(transition)]) | {"into_case_id"}
        assert transition.sources <= set(PATHS)


def action_of(transition: Any) -> Action:
    return next(a for a, t in TRANSITIONS.items() if t is transition)


ROWS = [(action, source) for action, t in TRANSITIONS.items() for source in sorted(t.sources)]


@pytest.fixture
def committed() -> Iterator[list[CaseEvent]]:
    seen: list[CaseEvent] = []
    remove = dispatch_service.add_event_hook(lambda _session, events: seen.extend(events))
    yield seen
    remove()


@pytest.mark.parametrize(("action", "source"), ROWS, ids=[f"{a}-from-{s}" for a, s in ROWS])
def test_each_row_runs_from_each_source_to_its_target_with_its_event(
    calls: Calls, committed: list[CaseEvent], action: Action, source: CaseStatus
) -> None:
    transition = TRANSITIONS[action]
    case_id = calls.case_in(source, ready_for=action)
    committed.clear()
    assert (
        action in calls.get(PARTY_USER[transition.party], f"/v1/cases/{case_id}").json()["actions"]
    )
    before = calls.get("dispatcher", f"/v1/cases/{case_id}").json()
    res = calls.act(PARTY_USER[transition.party], case_id, action)
    assert res.status_code == 200, res.text
    after = res.json()
    if transition.target is None:
        assert after["status"] == source
    elif isinstance(transition.target, CaseStatus):
        assert after["status"] == transition.target
    elif action is Action.RESUME:
        assert (
            after["status"]
            == [h for h in before["history"] if h["action"] == "suspend"][-1]["from_status"]
        )
    else:  # verify, passed
        assert after["status"] == CaseStatus.VERIFIED
    assert after["history"][-1]["action"] == action
    assert after["history"][-1]["from_status"] == source
    assert [e.type for e in committed if e.case_id == case_id] == [transition.event]


STATUSES = [
    CaseStatus.REPORTED,
    CaseStatus.REGISTERED,
    CaseStatus.DISPATCHED,
    CaseStatus.ACCEPTED,
    CaseStatus.SUSPENDED,
    CaseStatus.RESOLVED,
    CaseStatus.VERIFIED,
    CaseStatus.CLOSED,
]


@pytest.mark.parametrize("status", STATUSES)
def test_actions_listed_for_each_role_are_exactly_those_the_api_accepts(
    calls: Calls, status: CaseStatus
) -> None:
    base = calls.case_in(status)
    for who in ROLES:
        sees = who in SEEN_BY or (who == "dept-cgj" and status in DISPATCHED_ONWARD)
        seen = calls.get(who, f"/v1/cases/{base}")
        assert seen.status_code == (200 if sees else 404), (who, seen.text)
        listed = set(seen.json()["actions"]) if sees else set()
        accepted = set()
        for action in Action:
            transition = TRANSITIONS[action]
            # The party is judged first (403, even on a case one cannot see), then the status.
            if ACTS_AS.get(who) is not transition.party:
                expected: tuple[int, str | None] = (403, "not_permitted")
            elif status not in transition.sources:
                expected = (409, "illegal_transition")
            elif preparation(action, status) is not None:  # the base case lacks the step
                expected = (409, preparation(action, status)[1])  # type: ignore[index]
            else:
                expected = (200, None)
            if action in listed:  # it changes the case: on a fresh one in the same status
                res = calls.act(who, calls.case_in(status), action)
            else:
                res = calls.act(who, base, action)
            assert (res.status_code, res.json().get("error")) == expected, (who, action, res.text)
            if res.status_code == 200:
                accepted.add(str(action))
        assert listed == accepted, (who, status)
    after = calls.get("dispatcher", f"/v1/cases/{base}").json()
    assert after["status"] == status
    assert len(after["history"]) == len(PATHS[status]) + 1
