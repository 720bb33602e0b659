"""Grid imports (service and CLI) on both databases: a file with any problem stores nothing.

Each test gets a demo-seeded database of its own (imports that succeed change it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import box, mapping
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app.cli import main
from core.db import session_scope
from core.errors import ImportRefused, ValidationFailed
from grid import service as grid_service
from grid.demo_district import build_chancheng
from grid.models import Area
from tests.conftest import SECRET, OwnApp

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
TOLERANCE_M2 = 1.0
VILLAGE = "440604010001"


@dataclass(frozen=True)
class OwnDb:
    url: str
    engine: Engine


@pytest.fixture
def own_db(own_app: OwnApp) -> OwnDb:
    return OwnDb(own_app.url, own_app.engine)


def _state(engine: Engine) -> tuple[int, int, datetime | None, int]:
    """Grid revision, number of areas, newest change, active areas: equal means unchanged."""
    with Session(engine) as session:
        return (
            grid_service.current_revision(session),
            int(session.execute(select(func.count()).select_from(Area)).scalar_one()),
            session.execute(select(func.max(col(Area.updated_at)))).scalar_one(),
            int(
                session.execute(
                    select(func.count()).select_from(Area).where(col(Area.active).is_(True))
                ).scalar_one()
            ),
        )


def _fc(*areas: tuple[str, Any]) -> bytes:
    features = [
        {"type": "Feature", "properties": {"code": code, "name": f"区域{code}"}, "geometry": geom}
        for code, geom in areas
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def _import(db: OwnDb, source: bytes) -> dict[str, int]:
    with session_scope(db.engine) as session:
        return grid_service.import_geojson(
            session, source, crs="wgs84", now=NOW, tolerance_m2=TOLERANCE_M2
        )


def _refused(db: OwnDb, source: bytes) -> tuple[str, ...]:
    """Import `source`, expect refusal; the database must be exactly as before."""
    before = _state(db.engine)
    with pytest.raises(ImportRefused) as caught:
        _import(db, source)
    assert caught.value.code == "invalid_grids"
    assert caught.value.status_code == 422
    assert _state(db.engine) == before
    return caught.value.problems


def _village_grids() -> dict[str, shapely.Geometry]:
    return {g.code: g.geometry for g in build_chancheng().grids if g.parent_code == VILLAGE}


def _neighbours() -> tuple[str, str]:
    """Two grids of the test village that share a border."""
    grids = _village_grids()
    codes = sorted(grids)
    for a in codes:
        for b in codes:
            if a < b and grids[a].intersection(grids[b]).length > 0:
                return a, b
    raise AssertionError("no neighbouring grids")


def test_demo_file_reimports_and_bumps_the_revision(own_db: OwnDb) -> None:
    with session_scope(own_db.engine) as session:
        source = json.dumps(grid_service.export_feature_collection(session)).encode()
    revision, areas, _, _ = _state(own_db.engine)
    assert _import(own_db, source) == {"created": 0, "updated": 1065}
    after = _state(own_db.engine)
    assert after[:2] == (revision + 1, areas)


def test_overlapping_grids_are_refused_naming_both_codes(own_db: OwnDb) -> None:
    a, b = _neighbours()
    grids = _village_grids()
    grown = shapely.union(grids[a], grids[b].buffer(-0.0005))  # A swallows the core of B
    problems = _refused(own_db, _fc((a, mapping(grown))))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{a} and {b} overlap by ")


def test_gap_inside_a_village_is_refused_naming_village_and_size(own_db: OwnDb) -> None:
    a, _ = _neighbours()
    shrunk = _village_grids()[a].buffer(-0.0003)  # ~30 m off every side
    problems = _refused(own_db, _fc((a, mapping(shrunk))))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"village {VILLAGE}: ")
    size = float(problems[0].split(": ")[1].split(" m²")[0])
    assert size > 1000


def test_grid_whose_village_does_not_exist_is_refused_as_orphan(own_db: OwnDb) -> None:
    far = mapping(box(114.0, 22.5, 114.01, 22.51))  # away from every stored area
    problems = _refused(own_db, _fc(("440604010999001", far)))
    assert problems == (
        "440604010999001: its village 440604010999 is neither in the file nor in the "
        "database (orphan)",
    )


def test_grid_outside_its_village_is_refused(own_db: OwnDb) -> None:
    far = mapping(box(114.0, 22.5, 114.01, 22.51))
    problems = _refused(own_db, _fc((f"{VILLAGE}999", far)))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{VILLAGE}999: ")
    assert f"outside its village {VILLAGE}" in problems[0]


def test_shrunken_village_names_its_stored_grids_left_outside(own_db: OwnDb) -> None:
    a, _ = _neighbours()
    problems = _refused(own_db, _fc((VILLAGE, mapping(_village_grids()[a]))))
    outside = {p.split(":")[0] for p in problems if "outside its village" in p}
    assert outside == set(_village_grids()) - {a}


def test_file_defects_are_named_together(own_db: OwnDb) -> None:
    far = mapping(box(114.0, 22.5, 114.01, 22.51))
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[114, 22], [114.1, 22.1], [114.1, 22], [114, 22.1], [114, 22]]],
    }
    features = [
        {"type": "Feature", "properties": {"code": "440605"}, "geometry": far},
        {"type": "Feature", "properties": {"code": "440605"}, "geometry": far},
        {"type": "Feature", "properties": {"code": "4406050"}, "geometry": far},
        {"type": "Feature", "properties": {"code": "44060a"}, "geometry": far},
        {"type": "Feature", "properties": {"name": "无编码"}, "geometry": far},
        {"type": "Feature", "properties": {"code": "440606"}, "geometry": bowtie},
        {"type": "Feature", "properties": {"code": "440607"}, "geometry": None},
    ]
    source = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    problems = "\n".join(_refused(own_db, source))
    assert "440605: appears 2 times in the file" in problems
    assert "code 4406050 has 7 digits" in problems
    assert "code '44060a' is not a string of digits" in problems
    assert "feature 4: no `code` property" in problems
    assert "feature 5 (440606): invalid geometry (Self-intersection" in problems
    assert "feature 6 (440607): geometry is null" in problems


def test_unreadable_file_is_invalid_geojson(own_db: OwnDb) -> None:
    before = _state(own_db.engine)
    with pytest.raises(ValidationFailed) as caught:
        _import(own_db, b"\xff\xfe not utf-8")
    assert caught.value.code == "invalid_geojson"
    assert _state(own_db.engine) == before


def test_new_district_in_one_file_is_accepted(own_db: OwnDb) -> None:
    x, y, step = 114.0, 22.5, 0.01
    outline = box(x, y, x + 2 * step, y + step)
    source = _fc(
        ("440605", mapping(outline)),
        ("440605001", mapping(outline)),
        ("440605001001", mapping(outline)),
        ("440605001001001", mapping(box(x, y, x + step, y + step))),
        ("440605001001002", mapping(box(x + step, y, x + 2 * step, y + step))),
    )
    assert _import(own_db, source) == {"created": 5, "updated": 0}


def test_cli_prints_every_problem_and_exits_2_without_traceback(
    own_db: OwnDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", own_db.url)
    monkeypatch.setenv("GRIDGOV_SECRET_KEY", SECRET)
    a, b = _neighbours()
    grids = _village_grids()
    far = mapping(box(114.5, 22.5, 114.51, 22.51))
    path = tmp_path / "bad.geojson"
    path.write_bytes(
        _fc(
            (a, mapping(shapely.union(grids[a], grids[b].buffer(-0.0005)))),
            ("440604010998001", far),
        )
    )
    before = _state(own_db.engine)
    chinese = CliRunner(env={"LC_ALL": None, "LC_MESSAGES": None, "LANG": "zh_CN.UTF-8"})
    res = chinese.invoke(main, ["grids", "import", str(path)])
    assert res.exit_code == 2
    assert isinstance(res.exception, SystemExit)  # a message and an exit code, no traceback
    assert "Traceback" not in res.output
    assert "error: invalid_grids: 网格导入被拒绝，未保存任何内容：2 个问题" in res.output
    assert f"- {a} and {b} overlap by " in res.output
    assert "- 440604010998001: its village 440604010998 is neither" in res.output
    assert _state(own_db.engine) == before
