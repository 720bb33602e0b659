"""Area command centres (镇街 / 村居 dispatchers), their escalation queues and 督办, on SQLite and
PostGIS: a scoped dispatcher sees and acts on its area's cases only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlmodel import Session, col

from app.cli import main
from app.users import create_user
from core.db import session_scope
from core.errors import InvalidCentreArea, UnknownCentreArea
from core.models import Role, User
from dispatch.tasks import run_sweep
from grid.coords import wgs84_to_gcj02
from tests.conftest import Api, OwnApp, new_client_id

GRID = "440604011001001"  # 石湾镇街道 (440604011), its first 村居 (440604011001)
SAME_TOWN_GRID = "440604011002001"  # another 村居 of the same 镇街
OTHER_TOWN_GRID = "440604010001001"  # another 镇街
TOWN, VILLAGE = GRID[:9], GRID[:12]
PASSWORD = "centre-pass-1"


def _centre(api: Api, username: str, area: str | None) -> str:
    with session_scope(api.engine) as session:
        create_user(
            session,
            username=username,
            password=PASSWORD,
            role=Role.DISPATCHER,
            area_code=area,
            now=api.clock.now,
        )
    return username


@pytest.fixture
def centres(api: Api) -> dict[str, str]:
    return {
        "town": _centre(api, "town-centre", TOWN),
        "village": _centre(api, "village-centre", VILLAGE),
        "other_town": _centre(api, "other-town-centre", OTHER_TOWN_GRID[:9]),
    }


def _report(api: Api, point: Callable[[str], tuple[float, float]], grid: str) -> int:
    g_lng, g_lat = wgs84_to_gcj02(*point(grid))
    body = {
        "client_id": new_client_id(),
        "lat": g_lat,
        "lng": g_lng,
        "crs": "gcj02",
        "description": "路口暴露垃圾无人清理",  # 0601, normal: the ladder 1, 2, 3
    }
    res = api.post(f"gw{grid}", "/v1/reports", body)
    assert res.status_code == 201, res.text
    return int(res.json()["id"])


def _ids(api: Api, who: str, query: str = "") -> set[int]:
    res = api.get(who, f"/v1/cases?limit=200{query}")
    assert res.status_code == 200, res.text
    return {c["id"] for c in res.json()["items"]}


def test_a_scoped_centre_sees_and_acts_on_its_area_only(
    api: Api, demo_points: Any, centres: dict[str, str]
) -> None:
    here = _report(api, demo_points, GRID)
    same_town = _report(api, demo_points, SAME_TOWN_GRID)
    elsewhere = _report(api, demo_points, OTHER_TOWN_GRID)
    assert _ids(api, "dispatcher") == {here, same_town, elsewhere}
    assert _ids(api, centres["town"]) == {here, same_town}
    assert _ids(api, centres["village"]) == {here}
    assert _ids(api, centres["other_town"]) == {elsewhere}
    # The list's `total` follows the same scope.
    assert api.get(centres["village"], "/v1/cases").json()["total"] == 1

    assert api.get(centres["village"], f"/v1/cases/{same_town}").status_code == 404
    seen = api.get(centres["village"], f"/v1/cases/{here}").json()
    assert seen["actions"] == ["register", "reject", "merge"]
    # Outside its area a centre is no party: 403, and the case is unchanged.
    res = api.post(centres["village"], f"/v1/cases/{same_town}/register", {})
    assert (res.status_code, res.json()["error"]) == (403, "not_permitted")
    assert api.get("dispatcher", f"/v1/cases/{same_town}").json()["status"] == "reported"
    res = api.post(centres["town"], f"/v1/cases/{same_town}/register", {})
    assert res.status_code == 200, res.text
    assert res.json()["history"][-1]["actor"] == "town-centre"


def _sweep(api: Api) -> None:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    run_sweep(api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy)


def _dispatched(api: Api, demo_points: Any, grid: str) -> int:
    case_id = _report(api, demo_points, grid)
    for action in ("register", "dispatch"):
        assert api.post("dispatcher", f"/v1/cases/{case_id}/{action}", {}).status_code == 200
    return case_id


def test_an_escalated_case_shows_in_the_queue_of_the_level_it_reached(
    api: Api, demo_points: Any, centres: dict[str, str]
) -> None:
    escalating = _dispatched(api, demo_points, GRID)
    _sweep(api)
    mine = "&escalated_to=me"
    assert _ids(api, centres["village"], mine) == set()
    api.clock.advance(hours=6, minutes=5)  # 15:05 local: red, escalation level 1 (村居)
    _sweep(api)
    later = _dispatched(api, demo_points, SAME_TOWN_GRID)  # a fresh clock: not escalated
    assert api.get("dispatcher", f"/v1/cases/{escalating}").json()["escalation_level"] == 1
    assert _ids(api, centres["village"], mine) == {escalating}
    assert _ids(api, centres["town"], mine) == set()
    assert _ids(api, centres["town"]) == {escalating, later}
    api.clock.advance(hours=3)  # 18:05: level 2 (镇街)
    _sweep(api)
    assert _ids(api, centres["town"], mine) == {escalating}
    assert _ids(api, centres["village"], mine) == {escalating}  # it stays in the lower queue
    assert _ids(api, centres["other_town"], mine) == set()
    assert _ids(api, "dispatcher", mine) == set()  # the district's level (3) not reached yet
    api.clock.advance(days=1)  # both cases reach the district (level 3) by now
    _sweep(api)
    assert _ids(api, "dispatcher", mine) == {escalating, later}
    assert api.get("dispatcher", f"/v1/cases/{later}").json()["escalation_level"] == 3
    res = api.get(centres["town"], "/v1/cases?escalated_to=someone")
    assert (res.status_code, res.json()["error"]) == (422, "validation_error")


def test_supervise_comes_from_the_level_reached_or_above_and_is_recorded(
    api: Api, demo_points: Any, centres: dict[str, str]
) -> None:
    case_id = _dispatched(api, demo_points, GRID)
    path = f"/v1/cases/{case_id}/supervise"
    res = api.post(centres["village"], path, {})
    assert (res.status_code, res.json()["error"]) == (422, "note_required")
    api.clock.advance(hours=9, minutes=5)  # 18:05 local: escalated to level 2 (镇街)
    _sweep(api)
    case = api.get(centres["village"], f"/v1/cases/{case_id}").json()
    assert case["escalation_level"] == 2
    assert "supervise" not in case["actions"]
    res = api.post(centres["village"], path, {"note": "请尽快处理"})
    assert (res.status_code, res.json()["error"]) == (403, "below_escalation_level")
    assert "第 2 级" in res.json()["detail"]
    assert api.get(centres["town"], f"/v1/cases/{case_id}").json()["actions"].count("supervise")
    res = api.post(centres["other_town"], path, {"note": "请尽快处理"})
    assert (res.status_code, res.json()["error"]) == (403, "not_permitted")
    history_before = len(api.get("dispatcher", f"/v1/cases/{case_id}").json()["history"])
    res = api.post(centres["town"], path, {"note": "请今日内处理完毕"})
    assert res.status_code == 200, res.text
    entry = res.json()["history"][-1]
    assert len(res.json()["history"]) == history_before + 1
    assert entry["action"] == "supervise"
    assert entry["from_status"] == entry["to_status"] == "dispatched"
    assert entry["data"] == {
        "note": "请今日内处理完毕",
        "level": 2,
        "area_code": TOWN,
        "escalation_level": 2,
    }
    # The district's centre stands above every level; departments never supervise.
    assert api.post("dispatcher", path, {"note": "区指挥中心督办"}).status_code == 200
    res = api.post("dept-cgj", path, {"note": "x"})
    assert (res.status_code, res.json()["error"]) == (403, "not_permitted")


def test_only_dispatchers_get_an_area_and_it_must_be_a_town_or_village(api: Api) -> None:
    with session_scope(api.engine) as session:
        user = create_user(
            session,
            username="plain",
            password=PASSWORD,
            role=Role.DISPATCHER,
            now=api.clock.now,
        )
        assert user.area_code is None
    bad: list[tuple[Role, str, type[Exception]]] = [
        (Role.ADMIN, TOWN, InvalidCentreArea),
        (Role.DEPARTMENT, TOWN, InvalidCentreArea),
        (Role.DISPATCHER, GRID, UnknownCentreArea),  # a micro-grid is no command centre
        (Role.DISPATCHER, GRID[:6], UnknownCentreArea),  # the district: leave --area out
        (Role.DISPATCHER, "440604999", UnknownCentreArea),
    ]
    for role, area, error in bad:
        with pytest.raises(error), session_scope(api.engine) as session:
            create_user(
                session,
                username="scoped",
                password=PASSWORD,
                role=role,
                area_code=area,
                department_code="CGJ" if role is Role.DEPARTMENT else None,
                now=api.clock.now,
            )
    with Session(api.engine) as session:
        found = session.execute(select(User).where(col(User.username) == "scoped")).first()
        assert found is None


def test_users_add_area_makes_a_centre_from_the_command_line(
    own_app: OwnApp, demo_points: Any
) -> None:
    api = own_app.api
    here = _report(api, demo_points, GRID)
    elsewhere = _report(api, demo_points, OTHER_TOWN_GRID)
    args = ["users", "add", "--role", "dispatcher", "--password", PASSWORD]
    res = CliRunner().invoke(main, [*args, "--username", "zhen", "--area", TOWN])
    assert res.exit_code == 0, res.output
    assert {c["id"] for c in api.get("zhen", "/v1/cases").json()["items"]} == {here}
    assert api.get("zhen", f"/v1/cases/{elsewhere}").status_code == 404
    res = CliRunner().invoke(main, [*args, "--username", "cun", "--area", GRID])
    assert (res.exit_code, "unknown_centre_area" in res.output) == (2, True)
    res = CliRunner().invoke(
        main,
        ["users", "add", "--role", "admin", "--username", "a2", "--password", PASSWORD]
        + ["--area", TOWN],
    )
    assert (res.exit_code, "invalid_centre_area" in res.output) == (2, True)
