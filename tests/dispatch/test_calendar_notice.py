"""The import format of a State Council holiday notice (dispatch.calendar_notice): pure checks."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from core.errors import ValidationFailed
from dispatch.calendar_notice import NoticeDay, parse_notice


def notice(**changes: Any) -> dict[str, Any]:
    """A 2027 notice shaped like the real ones (the real one is not out yet)."""
    return {
        "year": 2027,
        "note": "国办发明电〔2026〕示例号",
        "holidays": [
            {"name": "元旦", "from": "2027-01-01", "to": "2027-01-03"},
            {"name": "春节", "from": "2027-02-05", "to": "2027-02-12", "workdays": ["2027-02-20"]},
        ],
        **changes,
    }


def refusal(data: Any) -> str:
    with pytest.raises(ValidationFailed) as info:
        parse_notice(data)
    assert info.value.code == "invalid_calendar"
    assert info.value.status_code == 422
    return info.value.detail


def test_notice_names_its_rest_days_and_tiaoxiu_working_days_in_order() -> None:
    parsed = parse_notice(notice())
    assert parsed.year == 2027
    assert parsed.note == "国办发明电〔2026〕示例号"
    assert [d.day for d in parsed.days if not d.workday] == [
        date(2027, 1, n) for n in (1, 2, 3)
    ] + [date(2027, 2, n) for n in range(5, 13)]
    assert parsed.days[-1] == NoticeDay(date(2027, 2, 20), True, "春节调休上班")


def test_notice_may_reach_into_the_december_before() -> None:
    """As the 2018 notice did: 元旦 from 2017-12-30."""
    parsed = parse_notice(
        notice(holidays=[{"name": "元旦", "from": "2026-12-30", "to": "2027-01-01"}])
    )
    assert parsed.days[0] == NoticeDay(date(2026, 12, 30), False, "元旦")


def test_every_problem_of_a_notice_is_named_at_once() -> None:
    detail = refusal(
        notice(
            holidays=[
                {"name": "元旦", "from": "2027-01-03", "to": "2027-01-01"},
                {
                    "name": "春节",
                    "from": "2027-02-05",
                    "to": "2027-02-12",
                    "workdays": ["2027-02-22"],
                },
                {"name": "清明节", "from": "2027-02-12", "to": "2027-02-12"},
                {"name": "国庆节", "from": "2027-10-01", "to": "2027-10-30"},
                {"name": "中秋节", "from": "2028-03-01", "to": "2028-03-01"},
            ]
        )
    )
    assert detail.startswith("日历被拒绝，未保存任何内容：5 个问题\n- ")
    assert "元旦: ends (2027-01-01) before it starts" in detail
    assert "春节: working day 2027-02-22 is a weekday" in detail
    assert "清明节: 2027-02-12 is named twice" in detail
    assert "国庆节: 30 days is longer than 15" in detail
    assert "中秋节: 2028-03-01 is not in or next to 2027" in detail


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ([], "file"),
        (notice(year="next"), "year"),
        (notice(holidays=[]), "holidays"),
        (notice(holidays=[{"name": "元旦", "from": "2027-01-01"}]), "holidays.0.to"),
        (notice(holidays=[{"name": "", "from": "2027-01-01", "to": "2027-01-01"}]), "name"),
        (notice(holidays=[{"name": "元旦", "from": "1/1/2027", "to": "2027-01-01"}]), "from"),
        (notice(extra=1), "extra"),
    ],
)
def test_malformed_notice_is_refused_naming_the_field(data: Any, where: str) -> None:
    assert where in refusal(data)


def test_notice_for_a_year_outside_the_lunar_tables_is_refused() -> None:
    assert "year 2100 is outside 1901-2099" in refusal(notice(year=2100))
