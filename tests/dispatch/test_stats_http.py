"""考核 figures (GET /v1/stats/departments, /v1/stats/areas), JSON and CSV, on SQLite and PostGIS:
a week of cases built by hand through the API (on time, late, returned and re-dispatched,
extended, failed check, visited, reopened, closed just after the period) and every number
checked against the hand count."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlmodel import Session

from app.users import create_user
from core.models import Role
from grid.coords import wgs84_to_gcj02
from tests.conftest import Api, new_client_id

G1 = "440604011001001"  # town 440604011, village 440604011001
V1, T1 = G1[:12], G1[:9]
PERIOD = "from=2026-11-24&to=2026-11-30"
ZERO = {
    "received": 0,
    "closed": 0,
    "on_time": 0,
    "overdue": 0,
    "on_time_rate": None,
    "returned": 0,
    "extended": 0,
    "redone": 0,
    "visited": 0,
    "satisfied": 0,
    "satisfaction_rate": None,
    "avg_handling_working_hours": None,
}


def _local(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A local (UTC+8) time of 2026 as the UTC instant the clock holds."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


class Scenario:
    def __init__(self, api: Api, point: Callable[[str], tuple[float, float]]) -> None:
        self.api, self.point = api, point

    def at(self, day: int, hour: int, minute: int = 0, month: int = 11) -> Scenario:
        self.api.clock.now = _local(day, hour, minute, month)
        return self

    def report(self, grid: str) -> int:
        g_lng, g_lat = wgs84_to_gcj02(*self.point(grid))
        body = {
            "client_id": new_client_id(),
            "lat": g_lat,
            "lng": g_lng,
            "crs": "gcj02",
            "description": "某路口井盖丢失，很危险",
        }
        res = self.api.post(f"gw{grid}", "/v1/reports", body)
        assert res.status_code == 201, res.text
        assert res.json()["department_code"] == "CGJ"
        assert res.json()["grid_code"] == grid
        return int(res.json()["id"])

    def act(self, who: str, case_id: int, action: str, **body: Any) -> dict[str, Any]:
        res = self.api.post(who, f"/v1/cases/{case_id}/{action}", body)
        assert res.status_code == 200, (action, res.text)
        return dict(res.json())

    def visit(self, case_id: int, satisfaction: str) -> None:
        """回访 by the command centre."""
        self.act("dispatcher", case_id, "visit", satisfaction=satisfaction, note="电话回访")


def _build(api: Api, point: Callable[[str], tuple[float, float]], g3: str, g2: str) -> None:
    """Limit of every case: 4 working hours (08:30-12:00, 14:00-17:30) from its report, or
    from the re-dispatch after a return / the failed check."""
    s = Scenario(api, point)
    cgj, zjj, d = "dept-cgj", "dept-zjj", "dispatcher"
    # A (Tue 24, G1): dispatched 09:10, resolved 10:10 (1 working hour), due 15:00: on time.
    a = s.at(24, 9).report(G1)
    s.at(24, 9, 5).act(d, a, "register")
    s.at(24, 9, 10).act(d, a, "dispatch")
    s.at(24, 9, 20).act(cgj, a, "accept")
    s.at(24, 10, 10).act(cgj, a, "resolve", note="已补装井盖")
    s.at(24, 10, 30).act(f"gw{G1}", a, "verify", passed=True)
    s.at(24, 10, 40).act(d, a, "close")
    # B (Wed 25, G1): resolved 16:10, after its 15:00 deadline: late; 09:10-16:10 less lunch
    # is 5 working hours.
    b = s.at(25, 9).report(G1)
    s.at(25, 9, 5).act(d, b, "register")
    s.at(25, 9, 10).act(d, b, "dispatch")
    s.at(25, 9, 20).act(cgj, b, "accept")
    assert s.at(25, 16, 10).act(cgj, b, "resolve", note="已处理")["due_at"] == (
        "2026-11-25T07:00:00Z"
    )
    s.at(25, 16, 20).act(f"gw{G1}", b, "verify", passed=True)
    s.at(25, 16, 30).act(d, b, "close")
    # C (Thu 26, G3: same town, another village): CGJ returns it, ZJJ gets it at 09:40 (its
    # clock starts then), resolves 10:40: on time, 1 working hour.
    c = s.at(26, 9).report(g3)
    s.at(26, 9, 5).act(d, c, "register")
    s.at(26, 9, 10).act(d, c, "dispatch")
    s.at(26, 9, 30).act(cgj, c, "return", reason="非本单位职责")
    s.at(26, 9, 40).act(d, c, "dispatch", department_code="ZJJ")
    s.at(26, 9, 50).act(zjj, c, "accept")
    s.at(26, 10, 40).act(zjj, c, "resolve", note="已修复")
    s.at(26, 11).act(f"gw{g3}", c, "verify", passed=True)
    s.at(26, 11, 10).act(d, c, "close")
    # D (Fri 27, G1): extended, fails its check (重办), closed, then a dissatisfied visit and a
    # reopen (重办 again): open at the end of the period, so not closed.
    dd = s.at(27, 9).report(G1)
    s.at(27, 9, 5).act(d, dd, "register")
    s.at(27, 9, 10).act(d, dd, "dispatch")
    s.at(27, 9, 20).act(cgj, dd, "accept")
    s.at(27, 9, 25).act(cgj, dd, "request_extension", reason="需协调", hours=4)
    s.at(27, 9, 30).act(d, dd, "approve_extension")
    s.at(27, 10, 10).act(cgj, dd, "resolve", note="已处理")
    s.at(27, 10, 30).act(f"gw{G1}", dd, "verify", passed=False, reason="未修好")
    s.at(27, 10, 40).act(cgj, dd, "accept")
    s.at(27, 11, 10).act(cgj, dd, "resolve", note="已返工")
    s.at(27, 11, 20).act(f"gw{G1}", dd, "verify", passed=True)
    s.at(27, 11, 30).act(d, dd, "close")
    s.at(27, 11, 40).visit(dd, "dissatisfied")
    assert s.at(27, 11, 50).act(d, dd, "reopen", reason="群众不满意")["status"] == "dispatched"
    # E (Tue 24 afternoon, G1): dispatched to CGJ, then recategorized as 燃气 (ZJJ's): dispatched
    # to ZJJ as well; still open.
    e = s.at(24, 14).report(G1)
    s.at(24, 14, 5).act(d, e, "register")
    s.at(24, 14, 10).act(d, e, "dispatch")
    moved = s.at(24, 14, 20).act(d, e, "recategorize", subcategory_code="0304", reason="实为液化气")
    assert (moved["department_code"], moved["status"]) == ("ZJJ", "dispatched")
    # Visits of A and B on Monday 30.
    s.at(30, 9).visit(a, "satisfied")
    s.at(30, 9, 5).visit(b, "basically_satisfied")
    # F (Mon 30, G2: another town): received in the period, resolved 09:40 (half a working
    # hour), closed at 07:30 local on 1 December (23:30 UTC on the 30th): not in the period.
    f = s.at(30, 9).report(g2)
    s.at(30, 9, 5).act(d, f, "register")
    s.at(30, 9, 10).act(d, f, "dispatch")
    s.at(30, 9, 20).act(cgj, f, "accept")
    s.at(30, 9, 40).act(cgj, f, "resolve", note="已处理")
    s.at(30, 10).act(f"gw{g2}", f, "verify", passed=True)
    s.at(1, 7, 30, month=12).act(d, f, "close")


@pytest.fixture
def built(api: Api, demo_points: Any, demo_grid_codes: list[str]) -> tuple[str, str]:
    g3 = next(g for g in demo_grid_codes if g.startswith(T1) and not g.startswith(V1))
    g2 = next(g for g in demo_grid_codes if not g.startswith(T1))
    _build(api, demo_points, g3, g2)
    api.clock.now = _local(2, 9, month=12)
    return g3, g2


CGJ = {
    "received": 6,  # A, B, C (before its return), D, E (before its recategorize), F
    "closed": 2,  # A, B (C is ZJJ's, D was reopened, F closed on 1 December)
    "on_time": 1,
    "overdue": 1,
    "on_time_rate": 0.5,
    "returned": 1,
    "extended": 1,
    "redone": 2,  # D's failed check and D's reopen
    "visited": 3,
    "satisfied": 2,  # satisfied + basically satisfied
    "satisfaction_rate": 0.6667,
    "avg_handling_working_hours": 3.0,  # (1 + 5) / 2
}
ZJJ = {
    **ZERO,
    "received": 2,  # C after its return, E by recategorize
    "closed": 1,
    "on_time": 1,
    "on_time_rate": 1.0,
    "avg_handling_working_hours": 1.0,
}


def _items(res: Any, key: str) -> dict[str, dict[str, Any]]:
    assert res.status_code == 200, res.text
    return {item.pop(key): item for item in res.json()["items"]}


def _without_names(items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        code: {k: v for k, v in item.items() if k not in ("department_name", "area_name", "level")}
        for code, item in items.items()
    }


def _check_rest_zero(items: dict[str, dict[str, Any]], expected: dict[str, Any]) -> None:
    for code, figures in _without_names(items).items():
        assert figures == expected.get(code, ZERO), code


def _csv_matches_json(api: Api, path: str, key: str) -> None:
    as_json = api.get("dispatcher", path).json()["items"]
    res = api.get("dispatcher", path + "&format=csv")
    assert res.status_code == 200
    assert res.headers["content-type"] == "text/csv; charset=utf-8"
    assert res.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(res.content.decode("utf-8-sig"))))
    header = rows[0]
    assert header[0] == key
    assert header[-1] == "avg_handling_working_hours"
    assert len(rows) == len(as_json) + 1
    for row, item in zip(rows[1:], as_json, strict=True):
        assert row == ["" if item[h] is None else str(item[h]) for h in header]
    # The same as an Excel workbook, read back with openpyxl: numbers stay numbers.
    res = api.get("dispatcher", path + "&format=xlsx")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert ".xlsx" in res.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(res.content), read_only=True).worksheets[0]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[0] == header
    for cell_row, item in zip(cells[1:], as_json, strict=True):
        assert cell_row == [item[h] for h in header]


def test_department_figures_count_every_kind_of_case(api: Api, built: tuple[str, str]) -> None:
    res = api.get("dispatcher", f"/v1/stats/departments?{PERIOD}")
    items = _items(res, "department_code")
    assert items["CGJ"]["department_name"] == "区城市管理和综合执法局"
    _check_rest_zero(items, {"CGJ": CGJ, "ZJJ": ZJJ})
    # The next day (local) holds F's closure: half a working hour, on time.
    dec1 = _items(
        api.get("dispatcher", "/v1/stats/departments?from=2026-12-01&to=2026-12-01"),
        "department_code",
    )
    _check_rest_zero(
        dec1,
        {
            "CGJ": {
                **ZERO,
                "closed": 1,
                "on_time": 1,
                "on_time_rate": 1.0,
                "avg_handling_working_hours": 0.5,
            }
        },
    )
    _csv_matches_json(api, f"/v1/stats/departments?{PERIOD}", "department_code")
    # A department reads its own row only.
    own = _items(api.get("dept-cgj", f"/v1/stats/departments?{PERIOD}"), "department_code")
    assert list(own) == ["CGJ"]
    assert _without_names(own)["CGJ"] == CGJ


def test_area_figures_at_each_level(api: Api, built: tuple[str, str]) -> None:
    g3, g2 = built
    v1 = {
        **CGJ,
        "received": 5,  # A, B, D, E twice
        "returned": 0,
    }
    v2 = {**ZJJ, "received": 2, "returned": 1}  # C, dispatched twice
    t1 = {
        "received": 7,
        "closed": 3,
        "on_time": 2,
        "overdue": 1,
        "on_time_rate": 0.6667,
        "returned": 1,
        "extended": 1,
        "redone": 2,
        "visited": 3,
        "satisfied": 2,
        "satisfaction_rate": 0.6667,
        "avg_handling_working_hours": 2.33,  # (1 + 5 + 1) / 3
    }
    t2 = {**ZERO, "received": 1}
    expected = {
        "town": {T1: t1, g2[:9]: t2},
        "village": {V1: v1, g3[:12]: v2, g2[:12]: t2},
        "grid": {G1: v1, g3: v2, g2: t2},
    }
    for level, figures in expected.items():
        path = f"/v1/stats/areas?level={level}&{PERIOD}"
        items = _items(api.get("dispatcher", path), "area_code")
        assert all(len(code) == {"town": 9, "village": 12, "grid": 15}[level] for code in items)
        assert all(item["level"] == level and item["area_name"] for item in items.values())
        _check_rest_zero(items, figures)
        _csv_matches_json(api, path, "area_code")


def test_who_may_read_the_figures(api: Api, built: tuple[str, str]) -> None:
    g3, _ = built
    for who, path in [
        (f"gw{G1}", f"/v1/stats/departments?{PERIOD}"),
        ("dept-cgj", f"/v1/stats/areas?level=town&{PERIOD}"),
    ]:
        res = api.get(who, path)
        assert (res.status_code, res.json()["error"]) == (403, "wrong_role")
    # A 村居 command centre counts its own village's cases only (C).
    with Session(api.engine) as session:
        create_user(
            session,
            username="centre-v2",
            password="centre-v2-password",
            role=Role.DISPATCHER,
            now=api.clock.now,
            area_code=g3[:12],
        )
        session.commit()
    depts = _items(api.get("centre-v2", f"/v1/stats/departments?{PERIOD}"), "department_code")
    only_c = {**ZJJ, "received": 1}
    _check_rest_zero(depts, {"CGJ": {**ZERO, "received": 1, "returned": 1}, "ZJJ": only_c})
    v2 = {**ZJJ, "received": 2, "returned": 1}
    towns = _items(api.get("centre-v2", f"/v1/stats/areas?level=town&{PERIOD}"), "area_code")
    assert _without_names(towns) == {T1: v2}
    grids = _items(api.get("centre-v2", f"/v1/stats/areas?level=grid&{PERIOD}"), "area_code")
    assert all(code.startswith(g3[:12]) for code in grids)
    _check_rest_zero(grids, {g3: v2})


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (f"{PERIOD}&colour=red", "unknown_parameter"),
        (f"{PERIOD}&from=2026-11-01", "repeated_parameter"),
        ("from=2026-11-30&to=2026-11-24", "invalid_range"),
        (f"{PERIOD}&format=pdf", "validation_error"),
        ("from=2026-11-30", "validation_error"),
    ],
)
def test_bad_queries_are_refused(api: Api, query: str, code: str) -> None:
    res = api.get("dispatcher", f"/v1/stats/departments?{query}")
    assert (res.status_code, res.json()["error"]) == (422, code)
