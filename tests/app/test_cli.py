"""The `gridgov` command line against a fresh SQLite database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy import text

from app.cli import main
from app.main import create_app
from core.clock import utcnow
from core.db import make_engine
from core.security import issue_token
from core.settings import Settings

SECRET = "gridgov-cli-tests-3e9a0c5d7f21b846-not-a-real-key"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", url)
    monkeypatch.setenv("GRIDGOV_SECRET_KEY", SECRET)
    return {"url": url, "tmp": tmp_path}


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _report(
    env: dict[str, Any], token: str, clock: Callable[[], datetime] = utcnow, **body: Any
) -> dict[str, Any]:
    """File one report through the API against the CLI's database; returns the case."""
    settings = Settings(database_url=env["url"], secret_key=SECRET)
    app = create_app(settings=settings, engine=make_engine(env["url"]), clock=clock)
    with TestClient(app) as client:
        res = client.post(
            "/v1/reports",
            headers={"Authorization": f"Bearer {token}"},
            json={"client_id": uuid.uuid4().hex, **body},
        )
    assert res.status_code == 201, res.text
    case: dict[str, Any] = res.json()
    return case


def _grids_file(tmp: Path) -> Path:
    cells = []
    for i in range(2):
        for j in range(2):
            code = f"440604010001{i * 2 + j + 1:03d}"
            geom = box(113.10 + 0.01 * i, 23.00 + 0.01 * j, 113.11 + 0.01 * i, 23.01 + 0.01 * j)
            cells.append(
                {
                    "type": "Feature",
                    "properties": {"code": code, "name": f"网格{code[-3:]}"},
                    "geometry": mapping(geom),
                }
            )
    parents = [
        ("440604", "禅城区", box(113.10, 23.00, 113.12, 23.02)),
        ("440604010", "祖庙街道", box(113.10, 23.00, 113.12, 23.02)),
        ("440604010001", "测试社区", box(113.10, 23.00, 113.12, 23.02)),
    ]
    for code, name, geom in parents:
        cells.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": name},
                "geometry": mapping(geom),
            }
        )
    path = tmp / "grids.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": cells}), "utf-8")
    return path


def test_db_upgrade_then_grids_import_export(env: dict[str, Any]) -> None:
    assert _run("db", "upgrade").exit_code == 0
    res = _run("grids", "import", str(_grids_file(env["tmp"])))
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"created": 7, "updated": 0}
    out = json.loads(_run("grids", "export").output)
    assert len(out["features"]) == 7
    again = _run("grids", "import", str(_grids_file(env["tmp"])))
    assert json.loads(again.output) == {"created": 0, "updated": 7}


def test_grids_import_refuses_garbage(env: dict[str, Any]) -> None:
    bad = env["tmp"] / "bad.geojson"
    bad.write_text("{not json", "utf-8")
    res = CliRunner().invoke(main, ["grids", "import", str(bad)])
    assert res.exit_code == 2
    assert "invalid_geojson" in res.output


def test_users_add_prints_a_working_token_last(env: dict[str, Any]) -> None:
    _run("grids", "import", str(_grids_file(env["tmp"])))
    res = _run(
        "users",
        "add",
        "--role",
        "grid_worker",
        "--username",
        "wang",
        "--password",
        "s3cret-pass",
        "--grid",
        "440604010001001",
        "--print-token",
    )
    assert res.exit_code == 0, res.output
    token = res.output.strip().splitlines()[-1]
    case = _report(env, token, lat=23.005, lng=113.105, description="路灯不亮了，晚上很黑")
    assert case["grid_code"] == "440604010001001"


def test_users_add_refuses_unknown_grid_and_role_mismatch(env: dict[str, Any]) -> None:
    _run("db", "upgrade")
    res = CliRunner().invoke(
        main,
        [
            "users",
            "add",
            "--role",
            "grid_worker",
            "--username",
            "li",
            "--password",
            "s3cret-pass",
            "--grid",
            "440604999999999",
        ],
    )
    assert res.exit_code == 2
    assert "unknown_grid" in res.output
    res = CliRunner().invoke(
        main,
        ["users", "add", "--role", "department", "--username", "li", "--password", "s3cret-pass"],
    )
    assert res.exit_code == 2
    assert "department_required" in res.output


def test_taxonomy_export_import_roundtrip_and_bad_import(env: dict[str, Any]) -> None:
    _run("db", "upgrade")
    exported = _run("taxonomy", "export").output
    data = json.loads(exported)
    assert len(data["categories"]) == 17
    data["categories"][0]["subcategories"][0]["name"] = "邻里纠纷（改）"
    path = env["tmp"] / "cat.json"
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    assert _run("taxonomy", "import", str(path)).exit_code == 0
    assert "邻里纠纷（改）" in _run("taxonomy", "export").output
    data["categories"][0]["code"] = "99x"
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    res = CliRunner().invoke(main, ["taxonomy", "import", str(path)])
    assert res.exit_code == 2
    assert "invalid_catalogue" in res.output
    assert "邻里纠纷（改）" in _run("taxonomy", "export").output  # the bad import changed nothing


def test_sweep_and_audit_verify(env: dict[str, Any]) -> None:
    _run("grids", "import", str(_grids_file(env["tmp"])))
    res = _run(
        "users",
        "add",
        "--role",
        "grid_worker",
        "--username",
        "zhao",
        "--password",
        "s3cret-pass",
        "--grid",
        "440604010001002",
        "--print-token",
    )
    assert res.exit_code == 0, res.output
    engine = make_engine(env["url"])
    # Filed 90 days ago (far past any time limit), so the sweep, at the real time, has one case.
    long_ago = datetime.now(UTC) - timedelta(days=90)
    with engine.connect() as conn:
        uid = conn.execute(text("SELECT id FROM app_user WHERE username = 'zhao'")).scalar_one()
    token = issue_token(secret=SECRET, user_id=uid, token_version=0, now=long_ago, ttl=3600)
    case = _report(
        env, token, clock=lambda: long_ago, lat=23.015, lng=113.105, description="路面塌陷很危险"
    )
    sweep = _run("sweep")
    assert sweep.exit_code == 0
    assert json.loads(sweep.output) == {
        "checked": 1,
        "sla_warning": 0,
        "sla_overdue": 1,
        "sla_escalated": 1,  # 90 days is past the first escalation step too
        "stage_warning": 0,  # a reported case runs no stage limit (签收, 核查)
        "stage_overdue": 0,
    }
    with engine.connect() as conn:
        level = conn.execute(
            text("SELECT warning_level FROM gg_case WHERE id = :id"), {"id": case["id"]}
        ).scalar_one()
    assert level == "red"
    ok = _run("audit", "verify")
    assert ok.exit_code == 0
    assert "intact" in ok.output
    with engine.begin() as conn:
        conn.execute(text("UPDATE case_history SET actor_name = 'someone else'"))
    bad = CliRunner().invoke(main, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "does not match" in bad.output


def test_calendar_override_moves_deadlines(env: dict[str, Any]) -> None:
    """An admin marks Wednesday 2027-03-03 a rest day (a year chinese-calendar does not know)."""
    from dispatch.service import CalendarProvider
    from taxonomy.catalogue import TimeUnit

    assert _run("db", "upgrade").exit_code == 0
    engine = make_engine(env["url"])
    calendars = CalendarProvider(
        engine, office_hours="08:30-12:00,14:00-17:30", timezone="Asia/Shanghai"
    )
    tuesday_4pm = datetime(2027, 3, 2, 8, 0, tzinfo=UTC)  # 16:00 local
    assert calendars.get().add(tuesday_4pm, 2, TimeUnit.WORKING_HOURS) == datetime(
        2027, 3, 3, 1, 0, tzinfo=UTC
    )  # Wednesday 09:00 local
    res = _run("calendar", "set", "2027-03-03", "--holiday", "--note", "地方假日")
    assert res.exit_code == 0, res.output
    assert "地方假日" in _run("calendar", "list").output
    calendars.invalidate()
    assert calendars.get().add(tuesday_4pm, 2, TimeUnit.WORKING_HOURS) == datetime(
        2027, 3, 4, 1, 0, tzinfo=UTC
    )  # Thursday 09:00 local


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("GRIDGOV_LOCK_TIMEOUT_SECONDS", "abc", "GRIDGOV_LOCK_TIMEOUT_SECONDS: Input should be"),
        ("GRIDGOV_ESCALATE_EVERY_FRACTION", "0.5", "per urgency in the catalogue"),
    ],
)
def test_a_bad_or_retired_setting_stops_every_command_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    res = CliRunner().invoke(main, ["sweep"])
    assert res.exit_code == 1
    assert res.output.startswith("Error: invalid configuration: ")
    assert says in res.output
    assert "Traceback" not in res.output
