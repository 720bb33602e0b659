"""Personal data in cases through HTTP, on SQLite and PostGIS: masked for grid workers and
departments (case, list, history), clear for the command centre with each such read logged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from core.privacy import PiiAccessLog
from tests.conftest import Api, new_client_id

GRID = "440604011001001"
WORKER = f"gw{GRID}"
DEPT = "dept-cgj"  # a missing manhole cover goes to 城管局 (CGJ)
PHONE, PHONE_MASKED = "13812345678", "138****5678"
ID_CARD, ID_MASKED = "440604199001011234", "440604********1234"
NOTE_PHONE, NOTE_PHONE_MASKED = "0757-83456789", "0757-****6789"
Point = Callable[[str], tuple[float, float]]


def _file(api: Api, point: Point, description: str) -> dict[str, Any]:
    lng, lat = point(GRID)
    body = {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": description}
    res = api.post(WORKER, "/v1/reports", body)
    assert res.status_code == 201, res.text
    return dict(res.json())


def _case_with_personal_data(api: Api, point: Point) -> int:
    """A case whose description, history reason and note hold a phone and an ID card number."""
    case = _file(api, point, f"井盖丢失，很危险，报告人电话{PHONE}，身份证{ID_CARD}")
    cid = int(case["id"])
    steps = [
        ("dispatcher", "register", {"reason": f"已电话核实（{PHONE}）"}),
        ("dispatcher", "dispatch", {"note": f"现场联系人座机{NOTE_PHONE}"}),
    ]
    for user, action, body in steps:
        res = api.post(user, f"/v1/cases/{cid}/{action}", body)
        assert res.status_code == 200, res.text
    return cid


def _log_rows(api: Api, case_id: int) -> list[PiiAccessLog]:
    with Session(api.engine) as s:
        return list(
            s.execute(
                select(PiiAccessLog)
                .where(col(PiiAccessLog.case_id) == case_id)
                .order_by(col(PiiAccessLog.id))
            ).scalars()
        )


def _assert_masked(text: str) -> None:
    assert PHONE not in text
    assert ID_CARD not in text
    assert "83456789" not in text
    assert "19900101" not in text  # the birth date
    assert PHONE_MASKED in text
    assert ID_MASKED in text


def test_department_sees_phone_and_id_card_masked_in_case_history_and_list(
    api: Api, demo_points: Point
) -> None:
    cid = _case_with_personal_data(api, demo_points)
    logged = len(_log_rows(api, cid))  # the dispatcher's answers showed it in clear
    case = api.get(DEPT, f"/v1/cases/{cid}")
    assert case.status_code == 200
    body = case.json()
    assert PHONE_MASKED in body["description"]
    assert ID_MASKED in body["description"]
    history = {h["action"]: h for h in body["history"]}
    assert history["register"]["reason"] == f"已电话核实（{PHONE_MASKED}）"
    assert history["dispatch"]["data"]["note"] == f"现场联系人座机{NOTE_PHONE_MASKED}"
    _assert_masked(case.text)
    listed = api.get(DEPT, "/v1/cases", params={"limit": 200})
    mine = [c for c in listed.json()["items"] if c["id"] == cid]
    assert mine
    assert PHONE_MASKED in mine[0]["description"]
    _assert_masked(listed.text)
    # The department's own action answers the case masked too.
    accepted = api.post(DEPT, f"/v1/cases/{cid}/accept", {})
    assert accepted.status_code == 200
    _assert_masked(accepted.text)
    assert len(_log_rows(api, cid)) == logged  # nothing shown in clear, nothing logged


def test_grid_worker_sees_personal_data_masked_even_in_their_own_report(
    api: Api, demo_points: Point
) -> None:
    filed = api.post(
        WORKER,
        "/v1/reports",
        {
            "client_id": new_client_id(),
            "lat": demo_points(GRID)[1],
            "lng": demo_points(GRID)[0],
            "description": f"井盖丢失，报告人电话{PHONE}，身份证{ID_CARD}",
        },
    )
    assert filed.status_code == 201
    _assert_masked(filed.text)
    cid = _case_with_personal_data(api, demo_points)
    logged = len(_log_rows(api, cid))
    _assert_masked(api.get(WORKER, f"/v1/cases/{cid}").text)
    listed = api.get(WORKER, "/v1/cases", params={"area_code": GRID, "limit": 200})
    assert any(c["id"] == cid for c in listed.json()["items"])
    _assert_masked(listed.text)
    assert len(_log_rows(api, cid)) == logged


def test_dispatcher_sees_clear_text_and_the_read_is_logged(api: Api, demo_points: Point) -> None:
    cid = _case_with_personal_data(api, demo_points)
    before = len(_log_rows(api, cid))  # the register and dispatch answers showed it too
    res = api.get("dispatcher", f"/v1/cases/{cid}")
    assert res.status_code == 200
    assert PHONE in res.json()["description"]
    assert ID_CARD in res.json()["description"]
    assert NOTE_PHONE in res.text
    rows = _log_rows(api, cid)
    assert len(rows) == before + 1
    row = rows[-1]
    assert (row.username, row.role, row.case_id) == ("dispatcher", "dispatcher", cid)
    assert row.kinds == "id_card,phone"
    assert row.endpoint == "GET /v1/cases/{id}"
    assert row.at == api.clock.now
    assert row.user_id is not None


def test_dispatcher_action_answers_are_logged_as_reads(api: Api, demo_points: Point) -> None:
    case = _file(api, demo_points, f"井盖丢失，报告人电话{PHONE}")
    cid = int(case["id"])
    res = api.post("dispatcher", f"/v1/cases/{cid}/register", {})
    assert PHONE in res.json()["description"]
    rows = _log_rows(api, cid)
    assert [(r.endpoint, r.kinds) for r in rows] == [("POST /v1/cases/{id}/register", "phone")]


def test_dispatcher_list_logs_the_cases_it_showed_in_clear(api: Api, demo_points: Point) -> None:
    cid = _case_with_personal_data(api, demo_points)
    plain = _file(api, demo_points, "井盖丢失，很危险")
    before = len(_log_rows(api, cid))
    listed = api.get("dispatcher", "/v1/cases", params={"area_code": GRID, "limit": 200})
    shown = {c["id"] for c in listed.json()["items"]}
    assert {cid, plain["id"]} <= shown
    rows = _log_rows(api, cid)
    assert len(rows) == before + 1
    assert (rows[-1].endpoint, rows[-1].kinds) == ("GET /v1/cases", "id_card,phone")
    assert _log_rows(api, int(plain["id"])) == []


def test_no_log_row_when_nothing_was_revealed(api: Api, demo_points: Point) -> None:
    # Case numbers, grid codes, dates and amounts are not personal data.
    case = _file(api, demo_points, f"井盖丢失，网格{GRID}，2026-11-24 发现，损失约1500元")
    cid = int(case["id"])
    res = api.get("admin", f"/v1/cases/{cid}")
    assert res.status_code == 200
    assert GRID in res.json()["description"]
    assert _log_rows(api, cid) == []
