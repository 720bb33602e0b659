"""Intake through HTTP: idempotency, CRS, and bad input (a clear code, nothing stored)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text
from sqlmodel import Session, col

from dispatch.models import Case
from grid.coords import wgs84_to_gcj02
from tests.conftest import Api
from tests.events.reports import counts, report_body

GRID = "440604010001001"
WORKER = f"gw{GRID}"


def test_same_client_id_and_payload_returns_the_same_case(api: Api, demo_points: Any) -> None:
    body = report_body(demo_points, grid=GRID)
    first = api.post(WORKER, "/v1/reports", body)
    again = api.post(WORKER, "/v1/reports", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["category_code"] == "06"


def test_same_client_id_with_other_payload_is_409_and_stores_nothing(
    api: Api, demo_points: Any
) -> None:
    body = report_body(demo_points, grid=GRID)
    assert api.post(WORKER, "/v1/reports", body).status_code == 201
    before = counts(api)
    res = api.post(WORKER, "/v1/reports", {**body, "description": "另一件事：路灯不亮"})
    assert res.status_code == 409
    assert res.json()["error"] == "client_id_conflict"
    assert counts(api) == before


def test_gcj02_and_wgs84_of_the_same_place_land_in_the_same_grid(
    api: Api, demo_points: Any
) -> None:
    lng, lat = demo_points(GRID)
    g_lng, g_lat = wgs84_to_gcj02(lng, lat)
    a = api.post(
        WORKER,
        "/v1/reports",
        report_body(demo_points, grid=GRID, lat=g_lat, lng=g_lng, crs="gcj02"),
    )
    b = api.post(WORKER, "/v1/reports", report_body(demo_points, grid=GRID))
    assert a.json()["grid_code"] == b.json()["grid_code"] == GRID
    assert abs(a.json()["lat"] - lat) < 1e-6  # stored in WGS-84


def test_unconverted_gcj02_point_would_land_elsewhere(api: Api, demo_points: Any) -> None:
    """Why the CRS matters: the GCJ-02 numbers read as WGS-84 are ~500 m off."""
    lng, lat = demo_points(GRID)
    g_lng, g_lat = wgs84_to_gcj02(lng, lat)
    res = api.get(WORKER, "/v1/grids/locate", params={"lat": g_lat, "lng": g_lng, "crs": "wgs84"})
    assert res.status_code == 200, res.text  # still inside the district, in another grid
    assert res.json()["rule"] == "inside"
    assert res.json()["grid_code"] != GRID


def test_category_given_by_reporter_is_kept(api: Api, demo_points: Any) -> None:
    res = api.post(
        WORKER,
        "/v1/reports",
        report_body(demo_points, grid=GRID, category_code="12", description="楼下有积水"),
    )
    assert res.status_code == 201
    assert res.json()["category_code"] == "12"
    assert res.json()["subcategory_code"].startswith("12")


def test_subcategory_given_by_reporter_sets_unit_and_limit(api: Api, demo_points: Any) -> None:
    res = api.post(
        WORKER,
        "/v1/reports",
        report_body(
            demo_points, grid=GRID, subcategory_code="0901", description="有人在楼顶搭建铁皮房"
        ),
    )
    assert res.status_code == 201
    assert res.json()["subcategory_code"] == "0901"


BAD_INPUTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("missing lat", {"lat": None}, 422, "invalid_coordinates"),
    ("lat out of range", {"lat": 123.0}, 422, "invalid_coordinates"),
    ("lng out of range", {"lng": -200.0}, 422, "invalid_coordinates"),
    ("unknown crs", {"crs": "bd09"}, 422, "unknown_crs"),
    ("outside the district", {"lat": 23.2, "lng": 113.5}, 422, "outside_district"),
    ("far away", {"lat": 39.9, "lng": 116.4}, 422, "outside_district"),
    ("empty description", {"description": "   "}, 422, "empty_description"),
    ("huge description", {"description": "井盖" * 10_000}, 422, "description_too_long"),
    ("unknown category", {"category_code": "18"}, 422, "unknown_category"),
    ("unknown subcategory", {"subcategory_code": "0899"}, 422, "unknown_subcategory"),
    (
        "subcategory of another category",
        {"category_code": "01", "subcategory_code": "0801"},
        422,
        "unknown_subcategory",
    ),
    ("unknown field", {"priority": "high"}, 422, "validation_error"),
    ("naive occurred_at", {"occurred_at": "2026-11-20T10:00:00"}, 422, "invalid_occurred_at"),
    (
        "future occurred_at",
        {"occurred_at": "2030-01-01T00:00:00+08:00"},
        422,
        "invalid_occurred_at",
    ),
    ("attachment that does not exist", {"attachment_ids": ["nope"]}, 422, "unknown_attachment"),
    ("lat as text", {"lat": "north"}, 422, "validation_error"),
]


@pytest.mark.parametrize(
    ("name", "override", "status", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_report_gets_a_clear_code_and_stores_nothing(
    api: Api, demo_points: Any, name: str, override: dict[str, Any], status: int, code: str
) -> None:
    before = counts(api)
    res = api.post(WORKER, "/v1/reports", report_body(demo_points, grid=GRID, **override))
    assert res.status_code == status, res.text
    assert res.json()["error"] == code
    assert "Traceback" not in res.text
    assert counts(api) == before


def test_nan_coordinates_are_refused(api: Api, demo_points: Any) -> None:
    before = counts(api)
    raw = '{"client_id": "nan-1", "lat": NaN, "lng": 113.1, "description": "井盖丢失"}'
    res = api.client.post(
        "/v1/reports",
        content=raw,
        headers={**api.headers(WORKER), "Content-Type": "application/json"},
    )
    assert res.status_code == 422
    assert res.json()["error"] == "invalid_coordinates"
    assert counts(api) == before


def test_malformed_json_is_400(api: Api) -> None:
    res = api.client.post(
        "/v1/reports",
        content=b'{"client_id": ',
        headers={**api.headers(WORKER), "Content-Type": "application/json"},
    )
    assert res.status_code == 400
    assert res.json()["error"] == "malformed_json"


def test_non_json_body_is_415(api: Api) -> None:
    res = api.client.post(
        "/v1/reports",
        content=b"<xml/>",
        headers={**api.headers(WORKER), "Content-Type": "application/xml"},
    )
    assert res.status_code == 415
    assert res.json()["error"] == "unsupported_media_type"


def test_oversized_body_is_413(api: Api) -> None:
    res = api.client.post(
        "/v1/reports",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={**api.headers(WORKER), "Content-Type": "application/json"},
    )
    assert res.status_code == 413
    assert res.json()["error"] == "payload_too_large"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Bearer not.a-token"}, "invalid_token"),
        ({"Authorization": "Basic abc"}, "missing_token"),
    ],
)
def test_wrong_or_missing_token_is_401(
    api: Api, demo_points: Any, headers: dict[str, str], code: str
) -> None:
    before = counts(api)
    res = api.client.post("/v1/reports", json=report_body(demo_points, grid=GRID), headers=headers)
    assert res.status_code == 401
    assert res.json()["error"] == code
    assert counts(api) == before


def test_department_cannot_file_reports(api: Api, demo_points: Any) -> None:
    res = api.post("dept-cgj", "/v1/reports", report_body(demo_points, grid=GRID))
    assert res.status_code == 403
    assert res.json()["error"] == "wrong_role"


def test_batch_resend_reports_each_item_on_its_own(api: Api, demo_points: Any) -> None:
    good = report_body(demo_points, grid=GRID)
    bad = report_body(demo_points, grid=GRID, lat=39.9, lng=116.4)
    invalid = {"client_id": "x"}
    res = api.post(WORKER, "/v1/reports/batch", {"reports": [good, bad, invalid, good]})
    assert res.status_code == 200
    statuses = [r["status"] for r in res.json()["results"]]
    assert statuses == [201, 422, 422, 200]
    results = res.json()["results"]
    assert results[1]["error"]["error"] == "outside_district"
    assert results[0]["case"]["id"] == results[3]["case"]["id"]
    # The whole batch resent (phone lost the answer): same cases, nothing new.
    before = counts(api)
    again = api.post(WORKER, "/v1/reports/batch", {"reports": [good]}).json()["results"]
    assert again[0]["status"] == 200
    assert counts(api) == before


def test_password_login_gives_a_working_token(api: Api) -> None:
    res = api.client.post("/v1/auth/token", data={"username": WORKER, "password": "gridgov-demo"})
    assert res.status_code == 200
    token = res.json()["access_token"]
    me = api.client.get("/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    wrong = api.client.post("/v1/auth/token", data={"username": WORKER, "password": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_credentials"


def test_locate_gives_path_and_rule(api: Api, demo_points: Any) -> None:
    lng, lat = demo_points(GRID)
    res = api.get(WORKER, "/v1/grids/locate", params={"lat": lat, "lng": lng})
    assert res.status_code == 200
    body = res.json()
    assert body["grid_code"] == GRID
    assert [p["level"] for p in body["path"]] == ["district", "town", "village", "grid"]
    assert body["path"][1]["name"] == "祖庙街道"
    assert body["rule"] == "inside"


def test_point_just_outside_the_district_goes_to_the_nearest_grid(api: Api) -> None:
    from grid.demo_district import build_chancheng

    outline = build_chancheng().district.geometry
    # Walk east from the district's easternmost vertex by ~20 m (well within the 50 m tolerance).
    minx, miny, maxx, maxy = outline.bounds
    east = max(
        outline.exterior.coords
        if outline.geom_type == "Polygon"
        else [c for g in outline.geoms for c in g.exterior.coords],
        key=lambda c: c[0],
    )
    res = api.get(WORKER, "/v1/grids/locate", params={"lat": east[1], "lng": east[0] + 0.0002})
    assert res.status_code == 200, res.text
    assert res.json()["rule"] == "nearest"
    assert 0 < res.json()["distance_m"] <= 50
    far = api.get(WORKER, "/v1/grids/locate", params={"lat": east[1], "lng": east[0] + 0.002})
    assert far.status_code == 422
    assert far.json()["error"] == "outside_district"


def test_classify_and_catalogue(api: Api) -> None:
    res = api.post(WORKER, "/v1/taxonomy/classify", {"text": "工地拖欠我们三个月工资了"})
    assert res.status_code == 200
    assert res.json()["candidates"][0]["category_code"] == "13"
    empty = api.post(WORKER, "/v1/taxonomy/classify", {"text": ""}).json()
    assert empty["candidates"]
    cat = api.get(WORKER, "/v1/taxonomy").json()
    assert [c["code"] for c in cat["categories"]] == [f"{i:02d}" for i in range(1, 18)]
    assert sum(len(c["subcategories"]) for c in cat["categories"]) == 133


def test_expired_token_is_401(api: Api, demo_points: Any) -> None:
    headers = api.headers(WORKER)  # valid for an hour from the test clock
    api.clock.advance(hours=2)
    res = api.client.post("/v1/reports", json=report_body(demo_points, grid=GRID), headers=headers)
    assert res.status_code == 401
    assert res.json()["error"] == "token_expired"


def test_token_signed_with_another_key_is_401(api: Api, demo_points: Any) -> None:
    from core.security import issue_token

    forged = issue_token(
        secret="not-the-key-but-long-enough-for-hs256-0123456789",
        user_id=1,
        token_version=0,
        now=api.clock.now,
        ttl=3600,
    )
    res = api.client.post(
        "/v1/reports",
        json=report_body(demo_points, grid=GRID),
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert res.status_code == 401
    assert res.json()["error"] == "invalid_token"


def test_absurdly_nested_json_is_400_not_500(api: Api) -> None:
    res = api.client.post(
        "/v1/reports",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={**api.headers(WORKER), "Content-Type": "application/json"},
    )
    assert res.status_code == 400
    assert res.json()["error"] == "malformed_json"


def test_control_characters_are_cleaned_or_refused(api: Api, demo_points: Any) -> None:
    res = api.post(
        WORKER, "/v1/reports", report_body(demo_points, grid=GRID, description="井盖\x00丢失\x07了")
    )
    assert res.status_code == 201, res.text
    assert res.json()["description"] == "井盖丢失了"
    before = counts(api)
    bad = api.post(
        WORKER, "/v1/reports", report_body(demo_points, grid=GRID, client_id="abc\x00def")
    )
    assert bad.status_code == 422
    assert bad.json()["error"] == "validation_error"
    assert counts(api) == before


def test_stored_location_is_the_point_of_the_stored_lng_lat(api: Api, demo_points: Any) -> None:
    """On PostGIS the INSERT makes the point from the row's lng/lat (no EWKB in Python): the
    stored geometry must be exactly that point, with its SRID, and lie in the case's grid."""
    res = api.post(WORKER, "/v1/reports", report_body(demo_points, grid=GRID))
    assert res.status_code == 201
    with Session(api.engine) as session:
        case = session.execute(select(Case).where(col(Case.id) == res.json()["id"])).scalar_one()
        assert (case.location.x, case.location.y) == (case.lng, case.lat)
        if api.engine.dialect.name == "postgresql":
            srid, inside = session.execute(
                text(
                    "SELECT ST_SRID(c.location), ST_Contains(a.geom, c.location) FROM gg_case c"
                    " JOIN area a ON a.code = c.grid_code WHERE c.id = :id"
                ),
                {"id": case.id},
            ).one()
            assert (srid, inside) == (4326, True)
