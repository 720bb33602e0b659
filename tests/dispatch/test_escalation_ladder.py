"""Escalation by the catalogue's ladder for the case's urgency, and by the stages' red cards, on
SQLite and PostGIS: each level is told once (`case.escalated` naming the level and the area it
reaches) at the instant the ladder gives, and the sweep reads the case only at those instants.

The clock starts on Tuesday 2026-11-24, 09:00 local (01:00 UTC)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from core.errors import InvalidCatalogue
from dispatch import service as dispatch_service
from dispatch.calendar import WorkCalendar, parse_office_hours
from dispatch.changes import CaseEvent, EventType
from dispatch.models import WarningLevel
from dispatch.sla import thresholds
from dispatch.tasks import run_sweep
from taxonomy import service as taxonomy_service
from taxonomy.catalogue import TimeUnit, load_default_catalogue
from tests.catalogues import import_catalogue
from tests.conftest import Api, new_client_id

GRID = "440604011001001"
VILLAGE, TOWN, DISTRICT = GRID[:12], GRID[:9], GRID[:6]
NORMAL = "0601"  # 暴露垃圾: 4 working hours, normal
URGENT = "0801"  # 井盖缺失破损: 4 working hours, urgent
EMERGENCY = "0303"  # 燃气泄漏: 1 natural hour, emergency

Point = Callable[[str], tuple[float, float]]


@pytest.fixture
def committed() -> Iterator[list[CaseEvent]]:
    """The events handed over by committing transactions, in order."""
    seen: list[CaseEvent] = []
    remove = dispatch_service.add_event_hook(lambda _session, events: seen.extend(events))
    yield seen
    remove()


def _report(api: Api, point: Point, subcategory_code: str) -> int:
    lng, lat = point(GRID)
    body = {
        "client_id": new_client_id(),
        "lat": lat,
        "lng": lng,
        "description": "测试事件",
        "subcategory_code": subcategory_code,
    }
    res = api.post(f"gw{GRID}", "/v1/reports", body)
    assert res.status_code == 201, res.text
    assert res.json()["subcategory_code"] == subcategory_code
    return int(res.json()["id"])


def _sweep(api: Api) -> dict[str, int]:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    return run_sweep(
        api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy
    )


def _escalations(committed: list[CaseEvent], case_id: int) -> list[tuple[dict[str, Any], Any]]:
    """Each `case.escalated` of the case: the escalation it names, and the stage (if any)."""
    return [
        (e.data["escalation"], e.data.get("stage"))
        for e in committed
        if e.case_id == case_id and e.type is EventType.ESCALATED
    ]


def _case(api: Api, case_id: int) -> dict[str, Any]:
    res = api.get("dispatcher", f"/v1/cases/{case_id}")
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


def _quiet(**counts: int) -> dict[str, int]:
    return {**dict.fromkeys(dispatch_service.SWEEP_COUNTS, 0), **counts}


SHANGHAI = ZoneInfo("Asia/Shanghai")
TUESDAY, WEDNESDAY = date(2026, 11, 24), date(2026, 11, 25)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), SHANGHAI)


@pytest.mark.parametrize(
    ("urgency", "expected"),
    [
        ("normal", [(local(TUESDAY, 15), 1), (local(TUESDAY, 17), 2), (local(WEDNESDAY, 10), 3)]),
        ("urgent", [(local(TUESDAY, 15), 2), (local(TUESDAY, 17), 3)]),
        ("emergency", [(local(TUESDAY, 15), 3)]),
        (
            "unheard_of",
            [(local(TUESDAY, 15), 1), (local(TUESDAY, 17), 2), (local(WEDNESDAY, 10), 3)],
        ),
    ],
)
def test_each_urgency_climbs_its_own_ladder_in_the_limits_kind_of_time(
    urgency: str, expected: list[tuple[datetime, int]]
) -> None:
    """4 working hours from Tuesday 09:00: due 15:00; +0.5 of the limit is 17:00, +1.0 is
    Wednesday 10:00 (2.5 h on Tuesday, 1.5 h on Wednesday)."""
    steps = list(
        thresholds(
            warn_at=local(TUESDAY, 14, 12),
            due_at=local(TUESDAY, 15),
            amount=4,
            unit=TimeUnit.WORKING_HOURS,
            calendar=WorkCalendar(parse_office_hours("08:30-12:00,14:00-17:30")),
            ladder=load_default_catalogue().escalation.for_urgency(urgency),
        )
    )
    assert steps[0] == (local(TUESDAY, 14, 12), WarningLevel.YELLOW, 0)
    assert [(at, level) for at, card, level in steps[1:] if card is WarningLevel.RED] == expected


def test_urgent_case_goes_to_its_town_at_red_then_to_the_district(
    api: Api, demo_points: Point, committed: list[CaseEvent]
) -> None:
    cid = _report(api, demo_points, URGENT)
    api.clock.advance(hours=6, minutes=5)  # 15:05 local: past the 15:00 deadline
    assert _sweep(api) == _quiet(checked=1, sla_overdue=1, sla_escalated=1)
    assert _escalations(committed, cid) == [({"level": 2, "area_code": TOWN}, None)]
    case = _case(api, cid)
    assert (case["warning_level"], case["escalation_level"]) == ("red", 2)
    *_, overdue, escalated = case["history"]
    assert (overdue["action"], escalated["action"]) == ("sla_overdue", "sla_escalated")
    assert escalated["data"]["escalation_from"] == 0  # level 1 passed over: told once, at 2
    assert escalated["data"]["escalation"] == {"level": 2, "area_code": TOWN}

    api.clock.advance(hours=1, minutes=50)  # 16:55: before +0.5 of the limit (17:00)
    assert _sweep(api) == _quiet()
    api.clock.advance(minutes=10)  # 17:05
    assert _sweep(api) == _quiet(checked=1, sla_escalated=1)
    assert _escalations(committed, cid) == [
        ({"level": 2, "area_code": TOWN}, None),
        ({"level": 3, "area_code": DISTRICT}, None),
    ]
    assert _case(api, cid)["history"][-1]["data"]["escalation_from"] == 2
    api.clock.advance(days=30)
    assert _sweep(api) == _quiet()  # nothing left to check
    assert len(_escalations(committed, cid)) == 2


def test_emergency_case_goes_to_the_district_at_red(
    api: Api, demo_points: Point, committed: list[CaseEvent]
) -> None:
    cid = _report(api, demo_points, EMERGENCY)
    api.clock.advance(minutes=59)  # 09:59: the natural hour is not over
    assert _sweep(api) == _quiet(checked=1, sla_warning=1)
    api.clock.advance(minutes=1)  # 10:00 local: red
    assert _sweep(api) == _quiet(checked=1, sla_overdue=1, sla_escalated=1)
    assert _escalations(committed, cid) == [({"level": 3, "area_code": DISTRICT}, None)]
    case = _case(api, cid)
    assert case["escalation_level"] == 3
    assert [h["action"] for h in case["history"]] == [
        "report",
        "sla_warning",
        "sla_overdue",
        "sla_escalated",
    ]
    api.clock.advance(days=30)
    assert _sweep(api) == _quiet()


def test_normal_case_tells_its_village_with_the_red_card(
    api: Api, demo_points: Point, committed: list[CaseEvent]
) -> None:
    cid = _report(api, demo_points, NORMAL)
    api.clock.advance(hours=5, minutes=59)  # 14:59
    assert _sweep(api) == _quiet(checked=1, sla_warning=1)
    api.clock.advance(minutes=1)  # 15:00: red, and the 村居 on the same entry
    assert _sweep(api) == _quiet(checked=1, sla_overdue=1)
    assert _escalations(committed, cid) == [({"level": 1, "area_code": VILLAGE}, None)]
    types = [e.type for e in committed if e.case_id == cid]
    assert types[-2:] == [EventType.OVERDUE, EventType.ESCALATED]


def test_a_stage_red_card_escalates_to_the_village_once_per_stage_run(
    api: Api, demo_points: Point, committed: list[CaseEvent]
) -> None:
    cid = _report(api, demo_points, NORMAL)
    path = f"/v1/cases/{cid}"
    for action in ("register", "dispatch"):
        assert api.post("dispatcher", f"{path}/{action}", {}).status_code == 200
    api.clock.advance(hours=2, minutes=5)  # 11:05 local: not accepted within 2 working hours
    assert _sweep(api) == _quiet(checked=1, stage_overdue=1)
    assert _escalations(committed, cid) == [({"level": 1, "area_code": VILLAGE}, "accept")]
    case = _case(api, cid)
    assert case["escalation_level"] == 1
    assert case["history"][-1]["action"] == "stage_overdue"
    assert case["history"][-1]["data"]["escalation"] == {"level": 1, "area_code": VILLAGE}
    assert _sweep(api) == _quiet()  # next: the handling limit's yellow card at 14:12

    api.clock.advance(hours=4)  # 15:05: red; the 村居 already has it, so no second telling
    assert _sweep(api) == _quiet(checked=1, sla_overdue=1)
    assert len(_escalations(committed, cid)) == 1
    api.clock.advance(hours=2)  # 17:05: +0.5 of the limit: the 镇街, from level 1
    assert _sweep(api) == _quiet(checked=1, sla_escalated=1)
    assert _escalations(committed, cid)[-1] == ({"level": 2, "area_code": TOWN}, None)
    assert _case(api, cid)["history"][-1]["data"]["escalation_from"] == 1

    assert api.post("dept-cgj", f"{path}/accept", {}).status_code == 200
    assert api.post("dept-cgj", f"{path}/resolve", {"note": "已清理"}).status_code == 200
    # 核查 within 8 working hours from 17:05: Thursday 09:05. Thursday 17:05: red.
    api.clock.advance(days=2)
    assert _sweep(api) == _quiet(checked=1, stage_overdue=1)
    assert _escalations(committed, cid)[-1] == ({"level": 1, "area_code": VILLAGE}, "verify")
    assert len(_escalations(committed, cid)) == 3
    assert _case(api, cid)["escalation_level"] == 2  # never lowered
    assert _sweep(api) == _quiet()


def _import(api: Api, data: dict[str, Any]) -> None:
    import_catalogue(api.engine, data, now=api.clock.now)


def test_an_imported_ladder_is_the_one_the_sweep_climbs(
    api: Api, demo_points: Point, committed: list[CaseEvent]
) -> None:
    data = load_default_catalogue().model_dump(mode="json")
    data["escalation"]["urgent"] = [{"past_due": 0.25, "level": 1}, {"past_due": 2, "level": 3}]
    _import(api, data)
    cid = _report(api, demo_points, URGENT)
    api.clock.advance(hours=6, minutes=5)  # 15:05: red, no rung at the deadline
    assert _sweep(api) == _quiet(checked=1, sla_overdue=1)
    assert _escalations(committed, cid) == []
    api.clock.advance(hours=1)  # 16:05: +0.25 of 4 working hours passed at 16:00
    assert _sweep(api) == _quiet(checked=1, sla_escalated=1)
    assert _escalations(committed, cid) == [({"level": 1, "area_code": VILLAGE}, None)]


def test_an_import_with_a_ladder_going_down_is_refused_and_changes_nothing(api: Api) -> None:
    data = load_default_catalogue().model_dump(mode="json")
    data["escalation"]["urgent"] = [{"past_due": 0, "level": 3}, {"past_due": 0.5, "level": 2}]
    with Session(api.engine) as session:
        before = taxonomy_service.latest_revision_id(session)
    with pytest.raises(InvalidCatalogue) as caught:
        _import(api, data)
    assert caught.value.problems == (
        "escalation.urgent: levels must strictly increase: level 2 comes after level 3",
    )
    with Session(api.engine) as session:
        assert taxonomy_service.latest_revision_id(session) == before
