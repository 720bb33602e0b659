"""Instants at the edges of the calendar (year 1 at +14:00, year 9999) are a 422, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, new_client_id

WORKER = "gw440604011001001"


@pytest.mark.parametrize(
    "occurred_at",
    ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00-14:00", "1899-12-31T23:00:00+08:00"],
)
def test_report_with_an_occurred_at_out_of_range_is_422(
    api: Api, demo_points: Any, occurred_at: str
) -> None:
    lng, lat = demo_points("440604011001001")
    body = {
        "client_id": new_client_id(),
        "lat": lat,
        "lng": lng,
        "description": "路灯不亮",
        "occurred_at": occurred_at,
    }
    res = api.post(WORKER, "/v1/reports", body)
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "invalid_occurred_at"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("from", "0001-01-01"),
        ("to", "9999-12-31"),
        ("from", "0001-01-01T00:00:00+14:00"),
        ("to", "9999-12-31T23:59:59.999999-14:00"),
        ("from", "1800-06-01"),
    ],
)
def test_case_list_bound_out_of_range_is_422(api: Api, name: str, value: str) -> None:
    res = api.get("dispatcher", "/v1/cases", params={name: value})
    assert res.status_code == 422, res.text
    assert res.json()["error"] == "invalid_datetime"
