"""Migration 0007 on data written before it: channels backfilled, reports keyed by (channel,
identity, client_id), resends still found, the audit log still verifies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.migrate import alembic_config
from core.db import UTCDateTime, unbounded
from dispatch import service as dispatch_service
from tests.conftest import SECRET, Api
from tests.events.reports import report_body

Point = Callable[[str], tuple[float, float]]
WORKER = "gw440604011001001"


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as conn, unbounded(conn):
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()  # no pooled connection keeps a plan of the old tables


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql)).all())


def _user_id(engine: Engine, username: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT id FROM app_user WHERE username = :u"), {"u": username}
            ).scalar_one()
        )


def test_0007_backfills_channels_and_keeps_resends_and_the_audit_log(
    api: Api, demo_points: Point
) -> None:
    engine = api.engine
    body = report_body(demo_points)
    by_worker = api.post(WORKER, "/v1/reports", body).json()
    by_centre = api.post("dispatcher", "/v1/reports", report_body(demo_points)).json()
    worker_id, dispatcher_id = _user_id(engine, WORKER), _user_id(engine, "dispatcher")

    _migrate(engine, "0006", down=True)
    cases = dict(_rows(engine, "SELECT id, source FROM gg_case"))
    assert (cases[by_worker["id"]], cases[by_centre["id"]]) == ("grid_worker", "command_centre")
    reports = {r.case_id: r for r in _rows(engine, "SELECT * FROM report")}
    assert (reports[by_centre["id"]].reporter_id, reports[by_centre["id"]].source) == (
        dispatcher_id,
        "command_centre",
    )
    # What an old release wrote: a second report of the command centre on its case.
    old_report = sa.table(
        "report",
        sa.column("reporter_id", sa.Integer),
        sa.column("client_id", sa.String),
        sa.column("payload_hash", sa.String),
        sa.column("source", sa.String),
        sa.column("case_id", sa.Integer),
        sa.column("received_at", UTCDateTime()),
    )
    with engine.begin() as conn:
        conn.execute(
            sa.insert(old_report).values(
                reporter_id=dispatcher_id,
                client_id="legacy-0001",
                payload_hash="0" * 64,
                source="command_centre",
                case_id=by_centre["id"],
                received_at=api.clock.now,
            )
        )

    _migrate(engine, "head")
    cases = dict(_rows(engine, "SELECT id, channel FROM gg_case"))
    assert (cases[by_worker["id"]], cases[by_centre["id"]]) == ("grid_worker", "dispatcher")
    keyed = {
        (r.client_id, r.case_id): (r.channel, r.reporter_identity, r.user_id)
        for r in _rows(engine, "SELECT * FROM report")
    }
    assert keyed[(body["client_id"], by_worker["id"])] == ("grid_worker", str(worker_id), worker_id)
    assert keyed[("legacy-0001", by_centre["id"])] == (
        "dispatcher",
        str(dispatcher_id),
        dispatcher_id,
    )
    # A phone resending after the upgrade finds its case; filters and answers use the channel.
    again = api.post(WORKER, "/v1/reports", body)
    assert (again.status_code, again.json()["id"]) == (200, by_worker["id"])
    listed = api.get("dispatcher", "/v1/cases", params={"channel": "dispatcher"}).json()
    assert by_centre["id"] in [c["id"] for c in listed["items"]]
    with Session(dispatch_service.audit_reader(engine)) as s:
        problems, _ = dispatch_service.verify_audit(s, key=SECRET)
    assert problems == []


def test_0007_downgrade_refuses_reports_without_an_account(api: Api, demo_points: Point) -> None:
    engine = api.engine
    case_id = api.post(WORKER, "/v1/reports", report_body(demo_points)).json()["id"]
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE report SET user_id = NULL, channel = 'wechat' WHERE case_id = :c"),
            {"c": case_id},
        )
    with pytest.raises(RuntimeError, match="without an account"):
        _migrate(engine, "0006", down=True)
    assert _rows(engine, f"SELECT channel FROM report WHERE case_id = {case_id}") == [("wechat",)]
