"""The scans on the database, through the scheduler's job and `gridgov warnings scan`: a cluster
of standing-water reports filed through the API raises a warning once, however many schedulers
run; a quiet grid's sudden reports are a spike. SQLite and PostGIS (two schedulers in parallel).

The clock starts on Tuesday 2026-11-24, 09:00 local (01:00 UTC)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from sqlmodel import Session, func, select

from app.cli import main as cli
from app.scheduler import warnings_job
from core.settings import Settings
from surveillance import runner
from surveillance.models import EarlyWarning, ScanRun
from tests.conftest import SECRET, Api, new_client_id
from tests.notify.helpers import deliver, subscribe
from tests.notify.receiver import receiver

Point = Callable[[str], tuple[float, float]]
HOT = ["440604011001001", "440604011001002", "440604011001003"]
SPIKE_GRID = "440604012001001"


def _file(api: Api, point: Point, grid: str, subcategory: str, text: str) -> int:
    lng, lat = point(grid)
    body = {
        "client_id": new_client_id(),
        "lat": lat,
        "lng": lng,
        "description": text,
        "subcategory_code": subcategory,
    }
    res = api.post(f"gw{grid}", "/v1/reports", body)
    assert res.status_code == 201, res.text
    return int(res.json()["id"])


def _district(api: Api, point: Point, grids: list[str]) -> list[int]:
    """90 days of scattered standing-water and noise reports, then 8 standing-water reports in
    three neighbouring grids over the last 3 days; the clock ends where it began."""
    rng = np.random.default_rng(5)
    end = api.clock.now
    for offset in sorted(rng.uniform(5, 90, 120), reverse=True):
        api.clock.now = end - timedelta(days=float(offset))
        grid = grids[int(rng.integers(len(grids)))]
        _file(api, point, grid, "1201" if rng.random() < 0.5 else "0501", "路边积水有蚊子")
    cluster = []
    for i, hours in enumerate((70, 60, 50, 40, 26, 20, 6, 2)):
        api.clock.now = end - timedelta(hours=hours)
        cluster.append(_file(api, point, HOT[i % 3], "1201", "小区花坛积水，蚊子很多"))
    api.clock.now = end
    return cluster


def _settings(api: Api) -> runner.ScanSettings:
    return runner.ScanSettings(
        study_days=120,
        max_radius_m=1000.0,
        max_window_days=14,
        min_recurrence_days=100.0,
        replications=199,
        rules="1201",
    )


def _job_settings(api: Api) -> None:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    runtime.settings = runtime.settings.model_copy(
        update={
            "warning_study_days": 120,
            "warning_min_recurrence_days": 100.0,
            "warning_replications": 199,
            "warning_scan_hour": 6,
        }
    )


def test_two_schedulers_raise_a_cluster_once_and_the_area_is_told(
    api: Api, demo_points: Point, demo_grid_codes: list[str]
) -> None:
    cluster = _district(api, demo_points, demo_grid_codes)
    _job_settings(api)
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with receiver() as hook:
        subscribe(api, hook.url, area=HOT[0][:9], events=["warning.raised"])
        threads = [threading.Thread(target=warnings_job, args=(runtime,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        warnings_job(runtime)  # later the same hour: both slots are done
        while deliver(api)["claimed"]:
            pass
    with Session(api.engine) as session:
        runs = session.exec(select(ScanRun.kind, ScanRun.slot, ScanRun.finished_at)).all()
        assert sorted((k, s) for k, s, _ in runs) == [
            ("cluster", "2026-11-24"),
            ("spike", "2026-11-24T09"),
        ]
        assert all(done is not None for _, _, done in runs)
        rows = session.exec(select(EarlyWarning)).all()
    clusters = [w for w in rows if w.kind == "cluster"]
    assert clusters, "the cluster was not found"
    by_target = {(w.category_code, w.subcategory_code): w for w in clusters}
    assert len(by_target) == len(clusters)  # one warning per target, not one per scheduler
    water = by_target[("12", "1201")]
    assert set(cluster) <= set(water.case_ids)
    assert water.area_code[:12] == HOT[0][:12]
    assert water.observed >= 8
    assert water.recurrence_days is not None
    assert water.recurrence_days >= 100
    told = [r.json["warning"]["id"] for r in hook.accepted()]
    assert sorted(told) == sorted(w.id for w in rows if w.area_code.startswith(HOT[0][:9]))
    listed = api.get("dispatcher", "/v1/warnings", params={"category_code": "12"}).json()
    assert water.id in [w["id"] for w in listed["items"]]


def test_the_cli_scans_by_hand_and_prints_the_warnings(
    api: Api,
    demo_points: Point,
    demo_grid_codes: list[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = _district(api, demo_points, demo_grid_codes)
    for name, value in {
        "GRIDGOV_DATABASE_URL": settings.database_url,
        "GRIDGOV_SECRET_KEY": SECRET,
        "GRIDGOV_WARNING_STUDY_DAYS": "120",
        "GRIDGOV_WARNING_MIN_RECURRENCE_DAYS": "100",
        "GRIDGOV_WARNING_REPLICATIONS": "199",
    }.items():
        monkeypatch.setenv(name, value)
    at = api.clock.now.isoformat()
    res = CliRunner().invoke(cli, ["warnings", "scan", "--at", at], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    printed: list[dict[str, Any]] = json.loads(res.stdout.strip().splitlines()[-1])
    water = [w for w in printed if w["subcategory_code"] == "1201"]
    assert water
    assert water[0]["outcome"] == "raised"
    assert set(cluster) <= set(water[0]["case_ids"])
    again = CliRunner().invoke(cli, ["warnings", "scan", "--at", at], catch_exceptions=False)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == []  # found again: nothing new
    with Session(api.engine) as session:
        assert session.exec(select(func.count()).select_from(EarlyWarning)).one() == len(printed)


def test_a_quiet_grids_sudden_reports_are_a_spike(api: Api, demo_points: Point) -> None:
    end = api.clock.now
    ids = []
    for hours in (9, 7, 5, 3, 1):
        api.clock.now = end - timedelta(hours=hours)
        ids.append(_file(api, demo_points, SPIKE_GRID, "0501", "工地晚上施工噪音很大"))
    api.clock.now = end
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    summary = runner.run_scan(
        api.engine,
        kind=runner.SPIKE_CHECK,
        now=end,
        grids=runtime.grids.get(),
        catalogue=runtime.taxonomy.get().catalogue,
        settings=_settings(api),
        tz=runtime.calendars.get().tz,
        is_workday=runtime.calendars.get().is_workday,
    )
    assert summary is not None
    [spike] = summary["warnings"]
    assert (spike["kind"], spike["category_code"], spike["area_code"]) == (
        "spike",
        "05",
        SPIKE_GRID,
    )
    assert spike["case_ids"] == sorted(ids)
    assert spike["observed"] == 5
