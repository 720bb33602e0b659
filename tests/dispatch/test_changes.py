"""The change seam (dispatch.changes): every change of a case yields its typed event in the same
transaction; a rolled-back transaction (or savepoint) yields none. On SQLite and PostGIS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlmodel import Session

from core.models import Role
from core.security import Actor
from dispatch import service as dispatch_service
from dispatch.changes import CaseEvent, EventType
from dispatch.models import Case
from dispatch.tasks import run_sweep
from dispatch.workflow import Action
from grid.coords import wgs84_to_gcj02
from tests.conftest import Api, new_client_id

GRID = "440604011001001"
DISPATCHER = Actor(id=None, username="dispatcher", role=Role.DISPATCHER)

Committed = list[CaseEvent]


@pytest.fixture
def committed() -> Iterator[Committed]:
    """The events handed to the hook by committing transactions, in order."""
    seen: Committed = []
    remove = dispatch_service.add_event_hook(lambda _session, events: seen.extend(events))
    yield seen
    remove()


def _report(
    api: Api,
    point: Callable[[str], tuple[float, float]],
    description: str = "某路口井盖丢失，很危险",
) -> dict[str, Any]:
    g_lng, g_lat = wgs84_to_gcj02(*point(GRID))
    body = {"client_id": new_client_id(), "lat": g_lat, "lng": g_lng, "crs": "gcj02"}
    res = api.post(f"gw{GRID}", "/v1/reports", {**body, "description": description})
    assert res.status_code == 201, res.text
    return res.json()


def _of(events: Committed, case_id: int) -> list[CaseEvent]:
    return [e for e in events if e.case_id == case_id]


def _act(api: Api, session: Session, case_id: int, action: Action, **params: Any) -> None:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    dispatch_service.act(
        session,
        case_id=case_id,
        action=action,
        params=dispatch_service.ActionParams(**params),
        actor=DISPATCHER,
        now=api.clock.now,
        calendars=runtime.calendars,
        policy=runtime.policy,
        catalogue=runtime.taxonomy.get().catalogue,
        grid_exists=lambda code: True,
    )


def test_committed_requests_produce_their_typed_events_in_order(
    api: Api, demo_points: Any, committed: Committed
) -> None:
    cid = _report(api, demo_points)["id"]
    for who, action, body in [
        ("dispatcher", "register", {}),
        ("dispatcher", "dispatch", {}),
        ("dept-cgj", "accept", {}),
        ("dept-cgj", "resolve", {"note": "已补装井盖"}),
        (f"gw{GRID}", "verify", {"passed": True}),
        ("dispatcher", "close", {}),
    ]:
        assert api.post(who, f"/v1/cases/{cid}/{action}", body).status_code == 200
    events = _of(committed, cid)
    assert [e.type for e in events] == [
        EventType.REPORTED,
        EventType.REGISTERED,
        EventType.DISPATCHED,
        EventType.ACCEPTED,
        EventType.RESOLVED,
        EventType.VERIFIED,
        EventType.CLOSED,
    ]
    assert [e.actor.username for e in events] == [f"gw{GRID}"] + ["dispatcher"] * 2 + [
        "dept-cgj"
    ] * 2 + [f"gw{GRID}", "dispatcher"]
    history = api.get("dispatcher", f"/v1/cases/{cid}").json()["history"]
    assert [e.data for e in events] == [h["data"] for h in history]


def test_a_refused_request_produces_no_event(
    api: Api, demo_points: Any, committed: Committed
) -> None:
    cid = _report(api, demo_points)["id"]
    assert api.post("dispatcher", f"/v1/cases/{cid}/reject", {}).status_code == 422
    assert [e.type for e in _of(committed, cid)] == [EventType.REPORTED]


def test_a_rolled_back_transaction_produces_no_event(
    api: Api, demo_points: Any, committed: Committed
) -> None:
    cid = _report(api, demo_points)["id"]
    with Session(api.engine) as session:
        _act(api, session, cid, Action.REGISTER)
        assert [e.type for e in dispatch_service.pending_events(session)] == [EventType.REGISTERED]
        session.rollback()
        assert dispatch_service.pending_events(session) == []
    assert [e.type for e in _of(committed, cid)] == [EventType.REPORTED]
    after = api.get("dispatcher", f"/v1/cases/{cid}").json()
    assert (after["status"], len(after["history"])) == ("reported", 1)


def test_a_rolled_back_savepoint_drops_only_its_events(
    api: Api, demo_points: Any, committed: Committed
) -> None:
    cid = _report(api, demo_points)["id"]
    with Session(api.engine) as session:
        savepoint = session.begin_nested()
        _act(api, session, cid, Action.REGISTER)
        savepoint.rollback()
        session.expire_all()
        _act(api, session, cid, Action.REJECT, reason="重复上报")
        session.commit()
    assert [e.type for e in _of(committed, cid)] == [EventType.REPORTED, EventType.REJECTED]
    assert [h["action"] for h in api.get("dispatcher", f"/v1/cases/{cid}").json()["history"]] == [
        "report",
        "reject",
    ]


def test_escalation_events_name_the_level_and_area_they_reach(
    api: Api, demo_points: Any, committed: Committed
) -> None:
    cid = _report(api, demo_points, "某路口暴露垃圾无人清理")["id"]  # normal: the ladder 1, 2, 3
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    for minutes in (5 * 60 + 15, 50, 3 * 60, 24 * 60):  # yellow, red (level 1), level 2, 3
        api.clock.advance(minutes=minutes)
        run_sweep(api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy)
    events = _of(committed, cid)
    assert [e.type for e in events] == [
        EventType.REPORTED,
        EventType.WARNING,
        EventType.OVERDUE,
        EventType.ESCALATED,
        EventType.ESCALATED,
        EventType.ESCALATED,
    ]
    assert (
        [e.data["escalation"] for e in events[3:]]
        == [
            {"level": 1, "area_code": GRID[:12]},  # 村居
            {"level": 2, "area_code": GRID[:9]},  # 镇街
            {"level": 3, "area_code": GRID[:6]},  # the district
        ]
    )
    with Session(api.engine) as session:
        case = session.get(Case, cid)
        assert case is not None
        assert case.escalation_level == 3
