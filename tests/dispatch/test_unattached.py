"""`unattached`: the fast constructor of a new case equals the model's own constructor."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from shapely.geometry import Point

from dispatch.cases import row_values, unattached
from dispatch.models import Case, CaseStatus

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
VALUES = {
    "id": 42,
    "case_no": "20261124000042",
    "status": CaseStatus.REPORTED,
    "channel": "wechat",
    "reporter_id": None,
    "description": "路灯不亮",
    "lat": 23.01,
    "lng": 113.1,
    "location": Point(113.1, 23.01),
    "grid_code": "440604011001001",
    "grid_rule": "inside",
    "category_code": "01",
    "subcategory_code": "0101",
    "classification_score": 0.5,
    "department_code": "CGJ",
    "urgency": "normal",
    "time_limit_value": 2,
    "time_limit_unit": "working_day",
    "clock_started_at": NOW,
    "occurred_at": None,
    "reported_at": NOW,
    "updated_at": NOW,
}


def test_same_row_and_defaults_as_the_model_constructor() -> None:
    fast, slow = unattached(Case, **VALUES), Case(**VALUES)
    fast_row, slow_row = row_values(fast), row_values(slow)
    assert fast_row.keys() == slow_row.keys()
    for name, value in slow_row.items():
        assert fast_row[name] == value, name


def test_later_changes_are_ordinary_attribute_sets() -> None:
    case = unattached(Case, **VALUES)
    case.status = CaseStatus.REGISTERED
    case.due_at = NOW
    assert row_values(case)["status"] == CaseStatus.REGISTERED
    assert row_values(case)["due_at"] == NOW


def test_unknown_field_is_refused() -> None:
    with pytest.raises(TypeError, match="no fields"):
        unattached(Case, **VALUES, colour="red")


def test_missing_required_field_is_refused() -> None:
    values = {k: v for k, v in VALUES.items() if k != "description"}
    with pytest.raises(TypeError, match="description is required"):
        unattached(Case, **values)
