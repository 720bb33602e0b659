"""The orphan sweep on SQLite and PostGIS: uploads no case used within the age go (row and
unused files), used ones stay; one scheduler at a time; the CLI. Time moves on the FakeClock."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session

from app.cli import main
from app.runtime import Runtime
from app.scheduler import attachments_job
from core.settings import Settings
from media import service as media_service
from media.models import Attachment
from tests.conftest import Api, OwnApp
from tests.events.reports import report_body
from tests.media.images import encoded, uploaded

WORKER = "gw440604011001001"
DAY = timedelta(hours=24)
Point = Callable[[str], tuple[float, float]]


def _prune(
    api: Api, settings: Settings, every: timedelta | None = None
) -> media_service.PruneResult:
    return media_service.prune(
        api.engine,
        now=api.clock.now,
        older_than=DAY,
        storage=media_service.storage_of(settings),
        every=every,
    )


def _exists(api: Api, attachment_id: str) -> bool:
    with Session(api.engine) as s:
        return s.get(Attachment, attachment_id) is not None


def _sha(api: Api, attachment_id: str) -> tuple[str, str]:
    with Session(api.engine) as s:
        row = s.get(Attachment, attachment_id)
        assert row is not None
        return row.sha256, row.thumb_sha256


def test_unused_upload_goes_after_a_day_and_a_used_one_stays(
    api: Api, settings: Settings, demo_points: Point
) -> None:
    storage = media_service.storage_of(settings)
    orphan = uploaded(api, WORKER, encoded("JPEG", (500, 400)))
    used = uploaded(api, WORKER, encoded("PNG", (500, 400)))
    res = api.post(WORKER, "/v1/reports", report_body(demo_points, attachment_ids=[used]))
    assert res.status_code == 201, res.text
    orphan_files, used_files = _sha(api, orphan), _sha(api, used)

    api.clock.advance(hours=23)
    assert _prune(api, settings).as_json() == {"skipped": False, "rows": 0, "files": 0}
    assert api.get(WORKER, f"/v1/attachments/{orphan}").status_code == 200

    api.clock.advance(hours=2)
    assert _prune(api, settings).as_json() == {"skipped": False, "rows": 1, "files": 2}
    assert not _exists(api, orphan)
    assert all(not storage.path_of(sha).exists() for sha in orphan_files)
    assert all(storage.path_of(sha).exists() for sha in used_files)
    assert api.get(WORKER, f"/v1/attachments/{orphan}").status_code == 404
    assert api.get(WORKER, f"/v1/attachments/{used}").status_code == 200
    # Too late to use it now.
    late = api.post(WORKER, "/v1/reports", report_body(demo_points, attachment_ids=[orphan]))
    assert late.status_code == 422
    assert late.json()["error"] == "unknown_attachment"


def test_a_file_another_upload_uses_stays(api: Api, settings: Settings, demo_points: Point) -> None:
    data = encoded("JPEG", (500, 400))
    orphan = uploaded(api, WORKER, data)
    api.clock.advance(hours=12)
    used = uploaded(api, WORKER, data)  # the same picture again, used this time
    assert _sha(api, orphan) == _sha(api, used)
    assert (
        api.post(WORKER, "/v1/reports", report_body(demo_points, attachment_ids=[used])).status_code
        == 201
    )
    api.clock.advance(hours=13)
    assert _prune(api, settings).as_json() == {"skipped": False, "rows": 1, "files": 0}
    assert api.get(WORKER, f"/v1/attachments/{used}").content


def test_files_without_a_row_go_once_old_and_fresh_ones_stay(api: Api, settings: Settings) -> None:
    """A file written by an upload whose row never committed (a crash) is swept by its stamp;
    one stamped recently may be about to get its row and stays."""
    storage = media_service.storage_of(settings)
    old = storage.put("a" * 64, b"left behind", now=api.clock.now - 2 * DAY)
    fresh = storage.put("b" * 64, b"being uploaded", now=api.clock.now)
    half = old.parent / ".tmp-killed"
    half.write_bytes(b"half a photo")
    stamp = (api.clock.now - 2 * DAY).timestamp()
    os.utime(half, (stamp, stamp))
    assert _prune(api, settings).files == 1
    assert not old.exists()
    assert not half.exists()
    assert fresh.exists()


def test_two_schedulers_at_once_sweep_once(api: Api, settings: Settings) -> None:
    hour = timedelta(hours=1)
    uploaded(api, WORKER)
    api.clock.advance(hours=25)
    first = _prune(api, settings, every=hour)
    second = _prune(api, settings, every=hour)
    assert (first.skipped, first.rows) == (False, 1)
    assert second.skipped
    api.clock.advance(minutes=59)
    assert _prune(api, settings, every=hour).skipped
    api.clock.advance(minutes=1)
    assert not _prune(api, settings, every=hour).skipped


def test_scheduler_job_sweeps_with_the_runtime_clock(api: Api) -> None:
    runtime: Runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    orphan = uploaded(api, WORKER)
    api.clock.advance(hours=25)
    attachments_job(runtime)
    assert not _exists(api, orphan)


def test_cli_prune_prints_what_it_removed(
    own_app: OwnApp, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings.attachment_dir is not None
    monkeypatch.setenv("GRIDGOV_ATTACHMENT_DIR", settings.attachment_dir)
    api = own_app.api
    orphan = uploaded(api, WORKER)
    at = (api.clock.now + timedelta(hours=25)).isoformat()
    early = CliRunner().invoke(main, ["attachments", "prune", "--at", api.clock.now.isoformat()])
    assert early.exit_code == 0, early.output
    assert json.loads(early.output.strip().splitlines()[-1]) == {
        "skipped": False,
        "rows": 0,
        "files": 0,
    }
    res = CliRunner().invoke(main, ["attachments", "prune", "--at", at])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["rows"] == 1
    assert not _exists(api, orphan)
    naive = CliRunner().invoke(main, ["attachments", "prune", "--at", "2026-11-24T09:00:00"])
    assert naive.exit_code == 2


def test_default_directory_is_beside_the_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/g.db")
    assert media_service.storage_of(settings).root == tmp_path.resolve() / "attachments"
    moved = Settings(database_url=f"sqlite:///{tmp_path}/g.db", attachment_dir=str(tmp_path / "x"))
    assert media_service.storage_of(moved).root == tmp_path / "x"
    assert os.path.isabs(
        media_service.storage_of(Settings(database_url="postgresql+psycopg://h/db")).root
    )
