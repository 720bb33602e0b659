"""The stored calendar on SQLite and PostGIS: overrides, imported notices, `calendar check`,
`GET /v1/calendar`, and deadlines across New Year 2027 (a year chinese-calendar does not know).

Tests that import a schedule make their own database: the shared one must keep 2027 unpublished.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from app.cli import main
from app.migrate import upgrade
from core.db import make_engine
from dispatch import calendar_service
from dispatch.calendar import DaySource, WorkCalendar
from dispatch.service import CalendarProvider
from grid.coords import wgs84_to_gcj02
from tests.conftest import Api, _drop_postgis, _postgis_url, new_client_id

NEW_YEAR_2027 = date(2027, 1, 1)
NOTICE_2027 = {
    "year": 2027,
    "note": "示例通知",  # shaped like the real notice, which is not out yet
    "holidays": [
        {"name": "元旦", "from": "2027-01-01", "to": "2027-01-03"},
        {"name": "春节", "from": "2027-02-05", "to": "2027-02-12", "workdays": ["2027-02-20"]},
    ],
}


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def own_db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """A fresh migrated database of its own, which the CLI also uses."""
    url = f"sqlite:///{tmp_path / 'calendar.db'}" if request.param == "sqlite" else _postgis_url()
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", url)
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        if request.param == "postgis":
            _drop_postgis(url)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def write(tmp_path: Path, data: Any, name: str = "notice.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    return str(path)


def calendar_of(engine: Engine) -> WorkCalendar:
    provider = CalendarProvider(
        engine, office_hours="08:30-12:00,14:00-17:30", timezone="Asia/Shanghai"
    )
    return provider.get()


# --- the stored schedule ------------------------------------------------------------------------


def test_set_override_wins_and_says_override(own_db: Engine) -> None:
    res = cli("calendar", "set", "2027-01-01", "--workday", "--note", "本地决定上班")
    assert res.exit_code == 0, res.output
    day = calendar_of(own_db).day(NEW_YEAR_2027)
    assert (day.workday, day.source, day.note) == (True, DaySource.OVERRIDE, "本地决定上班")
    listed = [json.loads(line) for line in cli("calendar", "list").output.splitlines()]
    assert listed == [
        {"day": "2027-01-01", "is_workday": True, "source": "override", "note": "本地决定上班"}
    ]


def test_imported_2027_schedule_is_official_and_removes_the_warning(
    own_db: Engine, tmp_path: Path
) -> None:
    before = calendar_of(own_db)
    assert before.day(date(2027, 2, 9)).source is DaySource.RULE  # 春节 make-up day by rule
    _, warnings = calendar_service.list_days(before, first=date(2027, 1, 1), last=date(2027, 3, 1))
    assert len(warnings) == 1
    assert "2027" in warnings[0]

    res = cli("calendar", "import", write(tmp_path, NOTICE_2027))
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {
        "year": 2027,
        "rest_days": 11,
        "workdays": 1,
        "kept_overrides": [],
    }
    after = calendar_of(own_db)
    days, warnings = calendar_service.list_days(
        after, first=date(2027, 1, 1), last=date(2027, 3, 1)
    )
    assert warnings == []
    by_date = {d.day: d for d in days}
    assert (by_date[NEW_YEAR_2027].workday, by_date[NEW_YEAR_2027].source) == (
        False,
        DaySource.OFFICIAL,
    )
    assert by_date[date(2027, 2, 11)].source is DaySource.OFFICIAL  # a Thursday of the break
    assert (by_date[date(2027, 2, 20)].workday, by_date[date(2027, 2, 20)].note) == (
        True,
        "春节调休上班",
    )
    assert by_date[date(2027, 2, 15)].source is DaySource.WEEKDAY
    assert not [d for d in days if d.source is DaySource.RULE]
    # Days the notice does not name are ordinary, even those the rule had guessed.
    assert after.day(date(2027, 10, 1)).source is DaySource.WEEKDAY


def test_reimport_replaces_the_year_and_keeps_local_overrides(
    own_db: Engine, tmp_path: Path
) -> None:
    assert cli("calendar", "import", write(tmp_path, NOTICE_2027)).exit_code == 0
    assert cli("calendar", "set", "2027-02-12", "--workday").exit_code == 0
    corrected = {**NOTICE_2027, "holidays": [NOTICE_2027["holidays"][1]]}  # type: ignore[index]
    res = cli("calendar", "import", write(tmp_path, corrected))
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.splitlines()[-1])["kept_overrides"] == ["2027-02-12"]
    calendar = calendar_of(own_db)
    assert calendar.day(NEW_YEAR_2027).source is DaySource.WEEKDAY  # dropped by the new file
    assert calendar.day(date(2027, 2, 12)).source is DaySource.OVERRIDE
    assert calendar.day(date(2027, 2, 11)).source is DaySource.OFFICIAL


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a UTF-8 JSON file"),
        (
            json.dumps(
                {
                    **NOTICE_2027,
                    "holidays": [
                        *NOTICE_2027["holidays"],  # type: ignore[misc]
                        {"name": "清明节", "from": "2027-04-05", "to": "2027-04-04"},
                    ],
                }
            ),
            "清明节: ends (2027-04-04) before it starts",
        ),
    ],
)
def test_bad_import_is_refused_whole_and_stores_nothing(
    own_db: Engine, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, "utf-8")
    res = cli("calendar", "import", str(path))
    assert res.exit_code == 2
    assert "invalid_calendar" in res.output
    assert message in res.output
    assert cli("calendar", "list").output == ""
    assert calendar_of(own_db).day(NEW_YEAR_2027).source is DaySource.RULE


def test_publish_after_entering_days_one_by_one_stops_the_rule(own_db: Engine) -> None:
    assert cli("calendar", "set", "2027-01-01", "--holiday", "--note", "元旦").exit_code == 0
    assert calendar_of(own_db).day(date(2027, 2, 5)).source is DaySource.RULE
    res = cli("calendar", "publish", "2027", "--note", "entered by hand")
    assert res.exit_code == 0, res.output
    calendar = calendar_of(own_db)
    assert calendar.day(date(2027, 2, 5)).source is DaySource.WEEKDAY
    assert calendar.unpublished_years(date(2027, 1, 1), date(2027, 12, 31)) == []


# --- gridgov calendar check ---------------------------------------------------------------------


def test_calendar_check_passes_when_the_years_in_use_are_published(own_db: Engine) -> None:
    res = cli("calendar", "check", "--on", "2026-06-01")
    assert res.exit_code == 0, res.output
    assert res.output.strip() == "published holiday schedules for 2026"


def test_calendar_check_fails_naming_next_year_near_year_end(
    own_db: Engine, tmp_path: Path
) -> None:
    res = cli("calendar", "check", "--on", "2026-12-02")
    assert res.exit_code == 1
    assert res.output.startswith("2027: no published holiday schedule")
    assert "gridgov calendar import" in res.output
    assert cli("calendar", "import", write(tmp_path, NOTICE_2027)).exit_code == 0
    res = cli("calendar", "check", "--on", "2026-12-02")
    assert res.exit_code == 0, res.output
    assert res.output.strip() == "published holiday schedules for 2026, 2027"


def test_calendar_check_counts_the_year_of_an_open_case_deadline(
    api: Api, demo_points: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case filed on 2027-03-01 (2027 is not imported in the test's database) is due in 2027."""
    api.clock.now = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)
    case = report(api, demo_points)
    assert case["due_at"].startswith("2027-03-01")
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", str(api.engine.url.render_as_string(False)))
    res = cli("calendar", "check", "--on", "2026-06-01", "--lookahead-days", "0")
    assert res.exit_code == 1
    assert "2027: no published holiday schedule" in res.output


# --- GET /v1/calendar and deadlines ---------------------------------------------------------------

GRID = "440604011001001"


def report(api: Api, point: Callable[[str], tuple[float, float]]) -> dict[str, Any]:
    lng, lat = point(GRID)
    g_lng, g_lat = wgs84_to_gcj02(lng, lat)
    body = {
        "client_id": new_client_id(),
        "lat": g_lat,
        "lng": g_lng,
        "crs": "gcj02",
        "description": "石湾镇街道某路口井盖丢失，很危险",  # 4 working hours
    }
    res = api.post(f"gw{GRID}", "/v1/reports", body)
    assert res.status_code == 201, res.text
    case: dict[str, Any] = res.json()
    return case


def test_deadline_filed_on_2026_12_31_skips_new_year_2027(api: Api, demo_points: Any) -> None:
    api.clock.now = datetime(2026, 12, 31, 8, 0, tzinfo=UTC)  # Thursday 16:00 in Shanghai
    case = report(api, demo_points)
    assert case["time_limit"] == {"value": 4, "unit": "working_hours"}
    # 16:00-17:30 is 1.5 h; 2027-01-01 (元旦, by rule) and the weekend rest; 2.5 h on Monday.
    assert case["due_at"] == "2027-01-04T03:00:00Z"


def test_calendar_lists_each_date_with_its_source_and_warns_of_2027(api: Api) -> None:
    res = api.get("dispatcher", "/v1/calendar", params={"from": "2026-12-30", "to": "2027-01-04"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert [(i["date"], i["workday"], i["source"]) for i in body["items"]] == [
        ("2026-12-30", True, "weekday"),
        ("2026-12-31", True, "weekday"),
        ("2027-01-01", False, "rule"),
        ("2027-01-02", False, "weekend"),
        ("2027-01-03", False, "weekend"),
        ("2027-01-04", True, "weekday"),
    ]
    assert body["items"][2]["note"] == "元旦"
    assert len(body["warnings"]) == 1
    assert "no published holiday schedule for 2027" in body["warnings"][0]


def test_calendar_of_a_published_year_has_official_days_and_no_warning(api: Api) -> None:
    res = api.get(f"gw{GRID}", "/v1/calendar", params={"from": "2026-01-01", "to": "2026-12-31"})
    assert res.status_code == 200, res.text
    body = res.json()
    assert len(body["items"]) == 365
    assert body["warnings"] == []
    sources = {i["date"]: (i["workday"], i["source"]) for i in body["items"]}
    assert sources["2026-10-01"] == (False, "official")
    assert {s for _, s in sources.values()} == {"official", "weekday", "weekend"}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2026-01-01", "to": "2027-02-05"}, "invalid_range"),  # 401 days
        ({"from": "2027-01-02", "to": "2027-01-01"}, "invalid_range"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "invalid_range"),
        ({"from": "2026-01-01"}, "validation_error"),
        ({"from": "2026-13-01", "to": "2027-01-01"}, "validation_error"),
    ],
)
def test_calendar_refuses_bad_ranges_with_422(api: Api, params: dict[str, str], code: str) -> None:
    res = api.get("dispatcher", "/v1/calendar", params=params)
    assert res.status_code == 422
    assert res.json()["error"] == code


def test_calendar_answers_400_days_at_most(api: Api) -> None:
    res = api.get("dispatcher", "/v1/calendar", params={"from": "2026-01-01", "to": "2027-02-04"})
    assert res.status_code == 200
    assert len(res.json()["items"]) == 400


def test_calendar_needs_a_token(api: Api) -> None:
    res = api.client.get("/v1/calendar", params={"from": "2027-01-01", "to": "2027-01-02"})
    assert res.status_code == 401
