"""What the console stands on (issue 12): the cookie session with its CSRF token, the page's
security headers, the workflow's forms, the SLA board (`/v1/stats/open`), lighter grid outlines,
and the change feed's visibility rule against the list's. SQLite and PostGIS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import update
from sqlmodel import Session, select

from app.deps import load_actor
from app.main import create_app
from core.db import session_scope
from core.models import Role, User
from core.settings import Settings
from dispatch import feed
from dispatch.actions import TRANSITIONS
from dispatch.cases import visibility
from dispatch.models import Case
from tests.conftest import Api, new_client_id

Point = Callable[[str], tuple[float, float]]
G1, G2 = "440604011001001", "440604011001002"  # one village of one town
G3 = "440604012001001"  # another town
PASSWORD = "gridgov-demo"


def _report(api: Api, point: Point, grid: str, text: str = "路灯不亮") -> dict[str, Any]:
    lng, lat = point(grid)
    body = {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": text}
    res = api.post(f"gw{grid}", "/v1/reports", body)
    assert res.status_code == 201, res.text
    return dict(res.json())


def _sign_in(client: TestClient, username: str = "dispatcher") -> dict[str, Any]:
    res = client.post("/v1/auth/session", data={"username": username, "password": PASSWORD})
    assert res.status_code == 200, res.text
    return dict(res.json())


def test_session_cookie_is_httponly_strict_and_survives_a_reload(client: TestClient) -> None:
    res = client.post("/v1/auth/session", data={"username": "dispatcher", "password": PASSWORD})
    assert res.status_code == 200, res.text
    cookie = res.headers["set-cookie"].lower()
    assert "gridgov_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    body = res.json()
    assert body["role"] == "dispatcher"
    assert len(body["csrf_token"]) == 64
    assert "access_token" not in body  # the page's scripts never hold the token
    again = client.get("/v1/auth/session")  # a reloaded page asks who is signed in
    assert again.status_code == 200
    assert again.json()["csrf_token"] == body["csrf_token"]
    assert client.get("/v1/cases").status_code == 200  # the API reads the cookie


def test_wrong_password_is_401_and_sets_no_cookie(client: TestClient) -> None:
    res = client.post("/v1/auth/session", data={"username": "dispatcher", "password": "nope"})
    assert res.status_code == 401
    assert res.json()["error"] == "invalid_credentials"
    assert "set-cookie" not in res.headers
    assert client.get("/v1/auth/session").json()["error"] == "missing_token"


def test_a_change_by_cookie_needs_the_csrf_token_and_without_it_changes_nothing(
    client: TestClient, api: Api, demo_points: Point
) -> None:
    case = _report(api, demo_points, G1)
    session = _sign_in(client)
    for headers in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": session["csrf_token"][:-1]}):
        res = client.post(f"/v1/cases/{case['id']}/register", json={}, headers=headers)
        assert (res.status_code, res.json()["error"]) == (403, "csrf_failed"), res.text
    assert client.get(f"/v1/cases/{case['id']}").json()["status"] == "reported"
    res = client.post(
        f"/v1/cases/{case['id']}/register",
        json={},
        headers={"X-CSRF-Token": session["csrf_token"]},
    )
    assert res.status_code == 200
    assert res.json()["status"] == "registered"


def test_bearer_calls_need_no_csrf_token(api: Api, demo_points: Point) -> None:
    case = _report(api, demo_points, G1)
    assert api.post("dispatcher", f"/v1/cases/{case['id']}/register", {}).status_code == 200


def test_sign_out_revokes_the_session(client: TestClient) -> None:
    session = _sign_in(client)
    assert client.delete("/v1/auth/session").json()["error"] == "csrf_failed"
    res = client.delete("/v1/auth/session", headers={"X-CSRF-Token": session["csrf_token"]})
    assert res.status_code == 204
    assert 'gridgov_session=""' in res.headers["set-cookie"] or "max-age=0" in (
        res.headers["set-cookie"].lower()
    )
    token_cookie = client.cookies.get("gridgov_session")
    assert token_cookie is None  # the browser dropped it
    assert client.get("/v1/auth/session").status_code == 401


def test_a_revoked_session_token_is_refused_even_if_kept(client: TestClient) -> None:
    session = _sign_in(client)
    kept = client.cookies.get("gridgov_session")
    assert kept is not None
    client.delete("/v1/auth/session", headers={"X-CSRF-Token": session["csrf_token"]})
    client.cookies.set("gridgov_session", kept)
    assert client.get("/v1/cases").json()["error"] == "token_revoked"


def test_the_console_page_has_a_strict_policy(client: TestClient) -> None:
    res = client.get("/console/")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    csp = res.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert res.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in res.text  # no inline script: the policy would refuse it
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/"
    script = client.get("/console/js/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert client.get("/console/../core/settings.py").status_code == 404


def test_an_intranet_tile_server_is_allowed_and_escaped(
    settings: Settings, engine: Any, clock: Any
) -> None:
    tiles = 'http://tiles.gov.local:8080/{z}/{x}/{y}.png?a=1&b="x"'
    app = create_app(
        settings=settings.model_copy(update={"console_tile_url": tiles}), engine=engine, clock=clock
    )
    with TestClient(app) as client:
        res = client.get("/console/")
    assert (
        "img-src 'self' data: blob: http://tiles.gov.local:8080;"
        in (res.headers["content-security-policy"])
    )
    assert (
        'data-tile-url="http://tiles.gov.local:8080/{z}/{x}/{y}.png?a=1&amp;b=&quot;x&quot;"'
        in (res.text)
    )


def test_workflow_forms_come_from_the_transition_table(api: Api) -> None:
    res = api.get("dispatcher", "/v1/workflow/actions")
    assert res.status_code == 200
    items = {i["action"]: i for i in res.json()["items"]}
    assert set(items) == {a.value for a in TRANSITIONS}
    for action, row in TRANSITIONS.items():
        form = items[action.value]
        assert form["label"]
        assert all("\u4e00" <= ch <= "\u9fff" for ch in form["label"])
        assert form["needs"] == sorted(row.needs)
        assert form["party"] == row.party.value
        assert not set(form["takes"]) & set(form["needs"])
    assert items["resolve"]["photos"]
    assert items["verify"]["photos"]
    assert items["request_extension"]["needs"] == ["hours", "reason"]
    assert "department_code" in items["dispatch"]["takes"]


def test_open_board_counts_open_cases_and_cards_per_area_and_department(
    api: Api, demo_points: Point
) -> None:
    ids = [_report(api, demo_points, g)["id"] for g in (G1, G1, G2, G3, G3)]
    closed = _report(api, demo_points, G3)["id"]
    assert (
        api.post("dispatcher", f"/v1/cases/{closed}/reject", {"reason": "重复"}).status_code == 200
    )
    with session_scope(api.engine) as session:
        session.execute(update(Case).where(Case.id == ids[0]).values(warning_level="yellow"))
        session.execute(update(Case).where(Case.id.in_(ids[3:])).values(warning_level="red"))
    town = api.get("dispatcher", "/v1/stats/open", params={"by": "town"}).json()
    rows = {i["code"]: i for i in town["items"]}
    assert rows["440604011"] | {"name": None, "oldest_due_at": None} == {
        "code": "440604011",
        "name": None,
        "open": 3,
        "warning": 1,
        "overdue": 0,
        "oldest_due_at": None,
    }
    assert (rows["440604012"]["open"], rows["440604012"]["overdue"]) == (2, 2)
    assert rows["440604011"]["name"]  # named from the areas
    assert town["items"][0]["code"] == "440604012"  # most overdue first
    assert town["total"]["open"] == 5
    assert town["total"]["overdue"] == 2
    grid = {
        i["code"]: i["open"]
        for i in api.get("dispatcher", "/v1/stats/open?by=grid").json()["items"]
    }
    assert grid == {G1: 2, G2: 1, G3: 2}
    depts = api.get("dispatcher", "/v1/stats/open?by=department").json()
    assert sum(i["open"] for i in depts["items"]) == 5
    assert all(i["name"] for i in depts["items"])
    assert api.get("dispatcher", "/v1/stats/open?by=city").status_code == 422
    assert api.get("dispatcher", "/v1/stats/open?colour=red").json()["error"] == "unknown_parameter"


def test_open_board_of_a_scoped_centre_is_its_area(
    api: Api, demo_points: Point, engine: Any
) -> None:
    from app.users import create_user

    for g in (G1, G3):
        _report(api, demo_points, g)
    with session_scope(engine) as session:
        create_user(
            session,
            username="town12",
            password=PASSWORD,
            role=Role.DISPATCHER,
            area_code="440604012",
            now=api.clock.now,
        )
    rows = api.get("town12", "/v1/stats/open?by=village").json()["items"]
    assert [r["code"] for r in rows] == [G3[:12]]


def test_simplified_outlines_are_lighter_and_still_polygons(api: Api) -> None:
    full = api.get("dispatcher", "/v1/grids", params={"level": "town"}).json()
    light = api.get("dispatcher", "/v1/grids", params={"level": "town", "simplify": 50}).json()
    assert [f["id"] for f in full["features"]] == [f["id"] for f in light["features"]]
    assert len(json.dumps(light)) < 0.5 * len(json.dumps(full))
    for a, b in zip(full["features"], light["features"], strict=True):
        simple = shape(b["geometry"])
        assert simple.is_valid
        assert not simple.is_empty
        assert (
            simple.symmetric_difference(shape(a["geometry"])).area
            < 0.05 * shape(a["geometry"]).area
        )
    town = api.get("dispatcher", "/v1/grids", params={"level": "grid", "parent": "440604012"})
    assert {f["id"][:9] for f in town.json()["features"]} == {"440604012"}
    assert api.get("dispatcher", "/v1/grids", params={"zoom": 3}).status_code == 422


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip, deflate", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=zero", False),
        ("identity", False),
        ("", False),
    ],
)
def test_simplified_outlines_come_gzipped_when_asked(api: Api, accept: str, gzipped: bool) -> None:
    params = {"level": "grid", "simplify": 15}
    plain = api.client.get(
        "/v1/grids", params=params, headers={**api.headers("dispatcher"), "Accept-Encoding": ""}
    )
    res = api.client.get(
        "/v1/grids",
        params=params,
        headers={**api.headers("dispatcher"), "Accept-Encoding": accept},
    )
    assert res.status_code == 200
    assert res.headers["vary"] == "Accept-Encoding"
    assert (res.headers.get("content-encoding") == "gzip") is gzipped
    assert res.content == plain.content  # httpx decodes: the same JSON either way
    assert "content-encoding" not in plain.headers
    if gzipped:
        assert int(res.headers["content-length"]) < 0.4 * len(plain.content)


@pytest.mark.parametrize("who", ["dispatcher", "town", "dept", "worker", "worker2"])
def test_feed_visibility_agrees_with_the_case_list(
    api: Api, demo_points: Point, engine: Any, who: str
) -> None:
    from app.users import create_user

    cases = [_report(api, demo_points, g) for g in (G1, G2, G3)]
    api.post("dispatcher", f"/v1/cases/{cases[0]['id']}/register", {})
    api.post("dispatcher", f"/v1/cases/{cases[0]['id']}/dispatch", {})
    with session_scope(engine) as session:
        create_user(
            session,
            username="town11",
            password=PASSWORD,
            role=Role.DISPATCHER,
            area_code="440604011",
            now=api.clock.now,
        )
    dept = cases[0]["department_code"]
    username = {
        "dispatcher": "dispatcher",
        "town": "town11",
        "dept": None,
        "worker": f"gw{G1}",
        "worker2": f"gw{G2}",
    }[who]
    with Session(engine) as session:
        if username is None:
            username = (
                session.execute(select(User.username).where(User.department_code == dept))
                .scalars()
                .first()
            )
        user = session.execute(select(User).where(User.username == username)).scalar_one()
    assert user.id is not None
    with engine.connect() as connection:
        actor = load_actor(connection, user.id, None)
    scope = visibility(actor)
    query = select(Case.id)
    if scope is not None:
        query = query.where(scope)
    with Session(engine) as session:
        listed = set(session.execute(query).scalars())
    with engine.connect() as connection:
        changes = feed.changes_after(connection, 0, limit=10_000)
    assert changes, "the reports and actions are in the feed"
    seen = {c.case_id for c in changes if feed.may_see(actor, c)}
    assert seen == listed & {c.case_id for c in changes}
    assert [c.seq for c in changes] == sorted({c.seq for c in changes})
