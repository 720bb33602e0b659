"""Warnings as objects: raised from a finding, updated (not repeated) while they persist,
acknowledged and closed by the command centre of their area, told to the subscriptions of their
area through the one outbox (a signed POST with the warning instead of a case). SQLite and
PostGIS."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from app.users import create_user
from core.db import session_scope
from core.models import Role
from surveillance import alerts
from surveillance.alerts import Finding
from surveillance.models import WarningKind
from tests.conftest import Api
from tests.notify.helpers import SECRET, deliver, deliveries, subscribe
from tests.notify.receiver import receiver

GRID = "440604011001001"
TOWN, OTHER_TOWN = GRID[:9], "440604012"


def _finding(api: Api, *case_ids: int, **changes: Any) -> Finding:
    now = api.clock.now
    base = Finding(
        kind=WarningKind.CLUSTER,
        category_code="12",
        subcategory_code="1201",
        area_code=GRID,
        center_lat=23.0,
        center_lng=113.1,
        radius_m=350.0,
        window_start=now - timedelta(days=5),
        window_end=now,
        observed=len(case_ids),
        expected=0.8,
        p_value=0.001,
        recurrence_days=1000.0,
        case_ids=case_ids,
    )
    return replace(base, **changes)


def _record(api: Api, *findings: Finding) -> list[tuple[int, str]]:
    with session_scope(api.engine) as session:
        done = alerts.record(session, findings, now=api.clock.now)
        return [(int(w.id or 0), outcome) for w, outcome in done]


def _scoped_centre(api: Api, username: str, area: str) -> None:
    with Session(api.engine) as session:
        create_user(
            session,
            username=username,
            password=f"{username}-password-1",
            role=Role.DISPATCHER,
            area_code=area,
            display_name="镇街指挥中心",
            now=api.clock.now,
        )
        session.commit()


def test_a_finding_raises_a_warning_that_persisting_updates_and_the_area_is_told(
    api: Api,
) -> None:
    with receiver() as town_hook, receiver() as other_hook, receiver() as unit_hook:
        subscribe(api, town_hook.url, area=TOWN)
        subscribe(api, other_hook.url, area=OTHER_TOWN)
        subscribe(api, unit_hook.url, department="CGJ")
        [(wid, outcome)] = _record(api, _finding(api, 1, 2, 3, 4, 5, 6))
        assert outcome == "raised"
        api.clock.advance(days=1)
        # The next day's scan finds it again, grown by a case: the same warning, updated.
        assert _record(api, _finding(api, 2, 3, 4, 5, 6, 7, center_lat=23.001)) == [
            (wid, "updated")
        ]
        # Found again with nothing new: seen, nobody told again.
        assert _record(api, _finding(api, 3, 4, 5, 6, 7)) == [(wid, "seen")]
        # One warning's events go out in order: the update after the raise is delivered.
        assert deliver(api)["delivered"] == 1
        assert deliver(api)["delivered"] == 1
    assert [e.type for _, e in deliveries(api)] == ["warning.raised", "warning.updated"]
    assert other_hook.receipts == []
    assert unit_hook.receipts == []
    raised, updated = (r.json for r in town_hook.accepted())
    assert all(r.signed_by(SECRET) for r in town_hook.receipts)
    assert set(raised) == {"id", "type", "occurred_at", "warning"}
    assert raised["warning"]["id"] == wid
    assert raised["warning"]["case_ids"] == [1, 2, 3, 4, 5, 6]
    assert updated["warning"]["case_ids"] == [1, 2, 3, 4, 5, 6, 7]
    assert updated["warning"]["center"] == {"lat": 23.001, "lng": 113.1}
    listed = api.get("dispatcher", "/v1/warnings").json()
    assert listed["total"] == 1
    item = listed["items"][0]
    assert (item["kind"], item["status"], item["observed"]) == ("cluster", "open", 7)
    assert "6 天内半径约 350 米范围有 7 件" in item["summary"]  # the window grew a day


def test_a_distant_finding_or_another_category_is_a_warning_of_its_own(api: Api) -> None:
    [(first, _)] = _record(api, _finding(api, 1, 2, 3))
    far = _finding(api, 11, 12, 13, center_lat=23.05)  # 5.5 km north
    other = _finding(api, 21, 22, 23, category_code="05", subcategory_code=None)
    [(second, a), (third, b)] = _record(api, far, other)
    assert (a, b) == ("raised", "raised")
    assert len({first, second, third}) == 3


def test_acknowledge_then_close_by_the_centre_of_the_area_only(api: Api) -> None:
    [(wid, _)] = _record(api, _finding(api, 1, 2, 3))
    _scoped_centre(api, "town-here", TOWN)
    _scoped_centre(api, "town-there", OTHER_TOWN)
    path = f"/v1/warnings/{wid}"
    assert api.get("town-there", "/v1/warnings").json() == {"items": [], "total": 0}
    res = api.post("town-there", f"{path}/acknowledge", {"note": "看看"})
    assert (res.status_code, res.json()["error"]) == (404, "warning_not_found")
    assert api.post(f"gw{GRID}", f"{path}/acknowledge", {}).status_code == 403
    res = api.post("town-here", f"{path}/acknowledge", {"note": "已通知卫健部门现场清查积水"})
    assert res.status_code == 200, res.text
    assert (res.json()["status"], res.json()["note"]) == (
        "acknowledged",
        "已通知卫健部门现场清查积水",
    )
    listed = api.get("town-here", "/v1/warnings", params={"status": "acknowledged"}).json()
    assert [w["id"] for w in listed["items"]] == [wid]
    res = api.post("town-here", f"{path}/close", {"note": "积水已清理"})
    assert (res.status_code, res.json()["status"]) == (200, "closed")
    again = api.post("dispatcher", f"{path}/close", {})
    assert (again.status_code, again.json()["error"]) == (409, "warning_closed")
    # The same cluster found after closing: a new warning.
    [(new, outcome)] = _record(api, _finding(api, 1, 2, 3))
    assert (outcome, new != wid) == ("raised", True)


def test_bad_warning_queries_are_refused(api: Api) -> None:
    for params, code in (
        ({"status": "burning"}, "validation_error"),
        ({"category_code": "1"}, "validation_error"),
        ({"colour": "red"}, "unknown_parameter"),
    ):
        res = api.get("dispatcher", "/v1/warnings", params=params)
        assert (res.status_code, res.json()["error"]) == (422, code)
    res = api.post("dispatcher", "/v1/warnings/99999/acknowledge", {})
    assert (res.status_code, res.json()["error"]) == (404, "warning_not_found")


def test_warning_figures_per_area_and_period(api: Api) -> None:
    """24 Nov (local): a cluster in 石湾 (acknowledged) and a spike in another town; 25 Nov: a
    cluster in 石湾; the period 24-24 counts the first two."""
    [(first, _)] = _record(api, _finding(api, 1, 2, 3))
    _record(
        api,
        _finding(api, 4, 5, kind=WarningKind.SPIKE, area_code=OTHER_TOWN + "001001", radius_m=0),
    )
    assert api.post("dispatcher", f"/v1/warnings/{first}/acknowledge", {}).status_code == 200
    api.clock.advance(days=1)
    _record(api, _finding(api, 11, 12, 13, category_code="05", subcategory_code=None))
    res = api.get(
        "dispatcher", "/v1/stats/warnings", params={"from": "2026-11-24", "to": "2026-11-24"}
    )
    assert res.status_code == 200, res.text
    assert res.json()["items"] == [
        {
            "area_code": TOWN,
            "raised": 1,
            "clusters": 1,
            "spikes": 0,
            "open": 0,
            "acknowledged": 1,
            "closed": 0,
        },
        {
            "area_code": OTHER_TOWN,
            "raised": 1,
            "clusters": 0,
            "spikes": 1,
            "open": 1,
            "acknowledged": 0,
            "closed": 0,
        },
    ]
    village = api.get(
        "dispatcher",
        "/v1/stats/warnings",
        params={"from": "2026-11-24", "to": "2026-11-25", "level": "village"},
    ).json()["items"]
    assert [(i["area_code"], i["raised"]) for i in village] == [
        (GRID[:12], 2),
        (OTHER_TOWN + "001", 1),
    ]
    _scoped_centre(api, "town-there", OTHER_TOWN)
    mine = api.get(
        "town-there", "/v1/stats/warnings", params={"from": "2026-11-24", "to": "2026-11-25"}
    )
    assert [i["area_code"] for i in mine.json()["items"]] == [OTHER_TOWN]
