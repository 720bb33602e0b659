"""Catalogue imports on both databases: dropping a code that open cases use is refused.

Each test gets a demo-seeded database of its own (the accepted imports add revisions).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlmodel import Session

from app.cli import main
from core.errors import ImportRefused
from taxonomy import service as taxonomy_service
from tests.catalogues import import_catalogue
from tests.conftest import SECRET, new_client_id
from tests.taxonomy.conftest import OwnDb

WORKER = "gw440604011001001"
GRID = "440604011001001"


def _file_case(db: OwnDb, point: Callable[[str], tuple[float, float]], sub: str) -> int:
    lng, lat = point(GRID)
    body = {
        "client_id": new_client_id(),
        "lat": lat,
        "lng": lng,
        "description": "测试事件",
        "subcategory_code": sub,
    }
    db.api.clock.advance(seconds=1)
    res = db.api.post(WORKER, "/v1/reports", body)
    assert res.status_code == 201, res.text
    assert res.json()["subcategory_code"] == sub
    case_id: int = res.json()["id"]
    return case_id


def _current(db: OwnDb) -> dict[str, Any]:
    with Session(db.engine) as session:
        data: dict[str, Any] = taxonomy_service.load_taxonomy(session).catalogue.model_dump(
            mode="json"
        )
    return data


def _without(data: dict[str, Any], code: str) -> dict[str, Any]:
    """The catalogue without category or subcategory `code`."""
    out: dict[str, Any] = json.loads(json.dumps(data))
    if len(code) == 2:
        out["categories"] = [c for c in out["categories"] if c["code"] != code]
    else:
        for cat in out["categories"]:
            cat["subcategories"] = [s for s in cat["subcategories"] if s["code"] != code]
    return out


def _import(db: OwnDb, data: dict[str, Any]) -> int:
    """Import through the service as the CLI does; returns the revision in force after."""
    return import_catalogue(db.engine, data, now=db.api.clock.now)


def _refused(db: OwnDb, data: dict[str, Any]) -> tuple[str, ...]:
    with Session(db.engine) as session:
        before = taxonomy_service.latest_revision_id(session)
    with pytest.raises(ImportRefused) as caught:
        _import(db, data)
    assert caught.value.code == "invalid_catalogue"
    with Session(db.engine) as session:
        assert taxonomy_service.latest_revision_id(session) == before
    return caught.value.problems


def test_dropping_a_subcategory_open_cases_use_is_refused_naming_it(
    own_db: OwnDb, demo_points: Callable[[str], tuple[float, float]]
) -> None:
    _file_case(own_db, demo_points, "0102")
    _file_case(own_db, demo_points, "0102")
    problems = _refused(own_db, _without(_current(own_db), "0102"))
    assert len(problems) == 1, problems
    assert problems[0].startswith("subcategory 0102 (")
    assert problems[0].endswith("is dropped but still used by 2 open cases")


def test_dropping_a_category_open_cases_use_is_refused_naming_it(
    own_db: OwnDb, demo_points: Callable[[str], tuple[float, float]]
) -> None:
    _file_case(own_db, demo_points, "0203")
    problems = _refused(own_db, _without(_current(own_db), "02"))
    assert problems == (
        "category 02 (治安隐患) is dropped but still used by 1 open case (subcategories 0203)",
    )


def test_dropping_an_unused_category_is_accepted(own_db: OwnDb) -> None:
    before = _current(own_db)
    with Session(own_db.engine) as session:
        revision = taxonomy_service.latest_revision_id(session)
    assert _import(own_db, _without(before, "17")) == revision + 1
    assert [c["code"] for c in _current(own_db)["categories"]][-1] == "16"


def test_finished_cases_do_not_hold_their_subcategory(
    own_db: OwnDb, demo_points: Callable[[str], tuple[float, float]]
) -> None:
    case_id = _file_case(own_db, demo_points, "0304")
    res = own_db.api.post("dispatcher", f"/v1/cases/{case_id}/reject", {"reason": "重复上报"})
    assert res.status_code == 200, res.text
    with Session(own_db.engine) as session:
        revision = taxonomy_service.latest_revision_id(session)
    assert _import(own_db, _without(_current(own_db), "0304")) == revision + 1


def test_cli_names_the_codes_and_exits_2(
    own_db: OwnDb,
    demo_points: Callable[[str], tuple[float, float]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", own_db.url)
    monkeypatch.setenv("GRIDGOV_SECRET_KEY", SECRET)
    _file_case(own_db, demo_points, "0405")
    _file_case(own_db, demo_points, "0102")
    data = _without(_without(_current(own_db), "04"), "0102")
    data["categories"][0]["subcategories"][0]["department_code"] = "NOPE"
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    with Session(own_db.engine) as session:
        before = taxonomy_service.latest_revision_id(session)
    english = CliRunner(env={"LC_ALL": "en_US.UTF-8"})
    res = english.invoke(main, ["taxonomy", "import", str(path)])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert "error: invalid_catalogue: catalogue import refused, nothing stored: 3 problems" in (
        res.output
    )
    assert "- unknown department code NOPE" in res.output
    assert "- category 04 (消防安全) is dropped but still used by 1 open case" in res.output
    assert "- subcategory 0102 (" in res.output
    with Session(own_db.engine) as session:
        assert taxonomy_service.latest_revision_id(session) == before
