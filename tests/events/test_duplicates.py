"""并单 candidates found at intake and the merge that follows, through HTTP, on SQLite and PostGIS:
open cases of the same category within the category's radius and window are candidates; the
command centre sees them and merges; the merged case's reporters follow the survivor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app.main import create_app
from app.users import create_user
from core.db import session_scope
from core.models import Role, User
from core.settings import Settings
from dispatch.duplicates import DEFAULT_RULES, DuplicateRules, parse_rules
from events.reporters import cases_of_reporter, reporters_of
from tests.conftest import Api, FakeClock, new_client_id
from tests.notify.helpers import deliver, subscribe
from tests.notify.receiver import receiver

GRID = "440604011001001"  # 石湾镇街道, its first 村居
OTHER_TOWN_GRID = "440604010001001"
WORKER = f"gw{GRID}"
GARBAGE = "小区门口垃圾堆积很多天没人清理，臭气熏天"  # 06 市容环境: 100 m / 2 days
PARKING = "路口车辆乱停乱放堵住消防通道"
M_PER_DEG = 111_195.0
Point = Callable[[str], tuple[float, float]]


def _at(
    point: Point, north_m: float = 0.0, east_m: float = 0.0, grid: str = GRID
) -> dict[str, Any]:
    """A WGS-84 position `north_m`/`east_m` metres from a point inside `grid`."""
    lng, lat = point(grid)
    return {"lat": lat + north_m / M_PER_DEG, "lng": lng + east_m / M_PER_DEG / 0.92}


def _report(api: Api, where: dict[str, Any], *, who: str = WORKER, **over: Any) -> dict[str, Any]:
    body = {"client_id": new_client_id(), "crs": "wgs84", "description": GARBAGE, **where, **over}
    res = api.post(who, "/v1/reports", body)
    assert res.status_code == 201, res.text
    return res.json()  # type: ignore[no-any-return]


def _case(api: Api, case_id: int, who: str = "dispatcher") -> dict[str, Any]:
    res = api.get(who, f"/v1/cases/{case_id}")
    assert res.status_code == 200, res.text
    return res.json()  # type: ignore[no-any-return]


def _candidates(api: Api, case_id: int, who: str = "dispatcher") -> list[int]:
    return [c["case_id"] for c in _case(api, case_id, who)["duplicate_candidates"]]


def test_a_nearby_report_of_the_same_category_names_the_open_case(
    api: Api, demo_points: Point
) -> None:
    first = _report(api, _at(demo_points))
    api.clock.advance(hours=5)
    second = _report(api, _at(demo_points, north_m=40))
    assert first["category_code"] == second["category_code"] == "06"
    shown = _case(api, second["id"])["duplicate_candidates"]
    assert [(c["case_id"], c["case_no"], c["status"]) for c in shown] == [
        (first["id"], first["case_no"], "reported")
    ]
    assert 35 <= shown[0]["distance_m"] <= 45
    assert _candidates(api, first["id"]) == []  # the older case names no later one
    dupes = api.get("dispatcher", f"/v1/cases/{second['id']}/duplicates").json()
    assert [c["case_id"] for c in dupes["items"]] == [first["id"]]
    assert dupes["later"] == []
    reverse = api.get("dispatcher", f"/v1/cases/{first['id']}/duplicates").json()
    assert (reverse["items"], [c["case_id"] for c in reverse["later"]]) == ([], [second["id"]])
    listed = api.get("dispatcher", "/v1/cases", params={"limit": 200}).json()["items"]
    by_id = {c["id"]: c for c in listed}
    assert [c["case_id"] for c in by_id[second["id"]]["duplicate_candidates"]] == [first["id"]]


def test_another_category_a_far_report_or_an_old_case_is_no_candidate(
    api: Api, demo_points: Point
) -> None:
    _report(api, _at(demo_points))
    other = _report(api, _at(demo_points, east_m=10), description=PARKING, category_code="05")
    far = _report(api, _at(demo_points, north_m=130))  # 06: 100 m
    assert other["category_code"] == "05"
    assert _candidates(api, other["id"]) == []
    assert _candidates(api, far["id"]) == []
    api.clock.advance(days=2, minutes=1)  # 06: 2 days
    late = _report(api, _at(demo_points, east_m=20))
    assert _candidates(api, late["id"]) == []


def test_a_finished_case_is_no_candidate(api: Api, demo_points: Point) -> None:
    first = _report(api, _at(demo_points))
    res = api.post("dispatcher", f"/v1/cases/{first['id']}/reject", {"reason": "重复上报"})
    assert res.status_code == 200, res.text
    second = _report(api, _at(demo_points, north_m=10))
    assert _candidates(api, second["id"]) == []


def test_candidates_are_the_nearest_few(api: Api, demo_points: Point) -> None:
    ids = [_report(api, _at(demo_points, north_m=8 * i))["id"] for i in range(12)]
    newest = _report(api, _at(demo_points, north_m=-1))
    assert _candidates(api, newest["id"]) == ids[:10]  # nearest first, at most 10


def test_only_command_centres_see_candidates_and_only_in_their_area(
    api: Api, demo_points: Point
) -> None:
    first = _report(api, _at(demo_points))
    second = _report(api, _at(demo_points, north_m=20))
    with session_scope(api.engine) as session:
        for name, area in (("own-town", GRID[:9]), ("other-town", OTHER_TOWN_GRID[:9])):
            create_user(
                session,
                username=name,
                password="centre-pass-1",
                role=Role.DISPATCHER,
                area_code=area,
                now=api.clock.now,
            )
    assert _candidates(api, second["id"], "own-town") == [first["id"]]
    assert _candidates(api, second["id"], WORKER) == []  # the reporter sees the case, not these
    refused = api.get(WORKER, f"/v1/cases/{second['id']}/duplicates")
    assert (refused.status_code, refused.json()["error"]) == (403, "wrong_role")
    assert api.get("other-town", f"/v1/cases/{second['id']}/duplicates").status_code == 404


def test_merge_tells_the_receiver_and_the_survivor_takes_the_reporters(
    api: Api, demo_points: Point
) -> None:
    first = _report(api, _at(demo_points))
    second = _report(api, _at(demo_points, north_m=30), who="dispatcher")
    with receiver() as hook:
        subscribe(api, hook.url, events=["case.merged"])
        res = api.post(
            "dispatcher",
            f"/v1/cases/{second['id']}/merge",
            {"into_case_id": first["id"], "reason": "同一处垃圾"},
        )
        assert res.status_code == 200, res.text
        assert res.json()["merged_into"] == {"id": first["id"], "case_no": first["case_no"]}
        deliver(api)
        assert hook.wait_for(1)
    (receipt,) = hook.receipts
    assert receipt.json["type"] == "case.merged"
    assert (receipt.json["case"]["id"], receipt.json["case"]["merged_into_id"]) == (
        second["id"],
        first["id"],
    )
    merged = _case(api, second["id"])
    assert (merged["status"], merged["merged_into"]["case_no"]) == ("merged", first["case_no"])
    with Session(api.engine) as s:
        reporters = reporters_of(s, first["id"])
        worker_id, centre_id = (_user_id(s, WORKER), _user_id(s, "dispatcher"))
        assert reporters == [("grid_worker", str(worker_id)), ("dispatcher", str(centre_id))]
        followed = cases_of_reporter(s, channel="dispatcher", identity=str(centre_id))
        assert [c.id for c in followed] == [first["id"]]


def _user_id(session: Session, username: str) -> int:
    return int(
        session.execute(select(col(User.id)).where(col(User.username) == username)).scalar_one()
    )


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("itself", "invalid_merge"),
        ("closed", "illegal_transition"),
        ("merged", "illegal_transition"),
    ],
)
def test_merging_into_itself_or_a_finished_case_is_refused(
    api: Api, demo_points: Point, target: str, code: str
) -> None:
    case = _report(api, _at(demo_points))
    other = _report(api, _at(demo_points, north_m=10))
    into = case["id"]
    if target == "merged":
        third = _report(api, _at(demo_points, north_m=20))
        api.post("dispatcher", f"/v1/cases/{other['id']}/merge", {"into_case_id": third["id"]})
        into = other["id"]
    elif target == "closed":
        into = other["id"]
        _close(api, into)
    res = api.post("dispatcher", f"/v1/cases/{case['id']}/merge", {"into_case_id": into})
    assert (res.status_code, res.json()["error"]) == (
        422 if code == "invalid_merge" else 409,
        code,
    )
    assert _case(api, case["id"])["status"] == "reported"


def _close(api: Api, case_id: int) -> None:
    steps = [
        ("dispatcher", "register", {}),
        ("dispatcher", "dispatch", {}),
        ("dept", "accept", {}),
        ("dept", "resolve", {"note": "已清理"}),
        (WORKER, "verify", {"passed": True}),
        ("dispatcher", "close", {}),
    ]
    department = _case(api, case_id)["department_code"]
    for who, action, body in steps:
        actor = f"dept-{department.lower()}" if who == "dept" else who
        res = api.post(actor, f"/v1/cases/{case_id}/{action}", body)
        assert res.status_code == 200, (action, res.text)


def test_a_candidate_merged_away_is_no_longer_shown(api: Api, demo_points: Point) -> None:
    first = _report(api, _at(demo_points))
    second = _report(api, _at(demo_points, north_m=10))
    third = _report(api, _at(demo_points, north_m=20))
    assert _candidates(api, third["id"]) == [second["id"], first["id"]]
    res = api.post("dispatcher", f"/v1/cases/{second['id']}/merge", {"into_case_id": first["id"]})
    assert res.status_code == 200, res.text
    assert _candidates(api, third["id"]) == [first["id"]]


def test_rules_by_category_and_overrides() -> None:
    assert DEFAULT_RULES["05"].radius_m == 150
    assert DEFAULT_RULES["16"].window == timedelta(days=1)
    rules = DuplicateRules(parse_rules("05=200m/2d, 16=800.5m/12h"))
    assert rules.for_category("05").radius_m == 200
    assert rules.for_category("16").window == timedelta(hours=12)
    assert rules.for_category("06") == DEFAULT_RULES["06"]
    assert rules.for_category("99").radius_m == 100
    for bad in ("05=200/2d", "5=200m/2d", "05=0m/1d", "05=9000m/1d", "05=100m/91d"):
        with pytest.raises(ValueError, match="duplicate rule"):
            parse_rules(bad)


def test_a_town_centre_cannot_merge_into_another_towns_case(api: Api, demo_points: Point) -> None:
    mine = _report(api, _at(demo_points))
    theirs = _report(api, _at(demo_points, grid=OTHER_TOWN_GRID), who="dispatcher")
    with session_scope(api.engine) as session:
        create_user(
            session,
            username="own-town",
            password="centre-pass-1",
            role=Role.DISPATCHER,
            area_code=GRID[:9],
            now=api.clock.now,
        )
    res = api.post("own-town", f"/v1/cases/{mine['id']}/merge", {"into_case_id": theirs["id"]})
    assert (res.status_code, res.json()["error"]) == (404, "case_not_found")
    assert _case(api, mine["id"])["status"] == "reported"


def test_settings_override_the_radius_and_the_number_kept(
    settings: Settings, engine: Engine, clock: FakeClock, demo_points: Point
) -> None:
    """GRIDGOV_DUPLICATE_RULES widens 06 to 500 m; GRIDGOV_DUPLICATE_MAX_CANDIDATES keeps one."""
    tuned = settings.model_copy(
        update={"duplicate_rules": "06=500m/2d", "duplicate_max_candidates": 1}
    )
    with TestClient(create_app(settings=tuned, engine=engine, clock=clock)) as client:
        api = Api(client, engine, clock)
        far = _report(api, _at(demo_points, north_m=300))
        _report(api, _at(demo_points, north_m=400))
        newest = _report(api, _at(demo_points))
        assert _candidates(api, newest["id"]) == [far["id"]]
