"""Migration 0013 on a database with open and finished cases, on SQLite and PostGIS: the queue
is filled from `next_check_at`, kept from then on, and the downgrade gives the index back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from app.migrate import alembic_config
from core.db import unbounded
from tests.conftest import Api
from tests.dispatch.test_case_due import due_queue_mismatches
from tests.notify.helpers import act, report


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as conn, unbounded(conn):
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()


def _indexes(engine: Engine, table: str) -> set[str]:
    return {ix["name"] for ix in sa.inspect(engine).get_indexes(table) if ix["name"]}


def test_0013_fills_the_queue_from_the_cases_and_its_downgrade_restores_the_index(
    api: Api, demo_points: Any
) -> None:
    open_case = report(api, demo_points)
    act(api, "dispatcher", open_case, "register")
    act(api, "dispatcher", open_case, "dispatch")
    finished = report(api, demo_points)
    act(api, "dispatcher", finished, "reject", {"reason": "不属于受理范围"})
    another = report(api, demo_points)
    _migrate(api.engine, "0012", down=True)
    assert "case_due" not in sa.inspect(api.engine).get_table_names()
    assert "ix_gg_case_next_check_at" in _indexes(api.engine, "gg_case")
    with api.engine.begin() as conn:  # written while there is no queue (the service of 0012's
        conn.execute(  # time is gone: later tables are used by every report now)
            sa.text("UPDATE gg_case SET next_check_at = :t WHERE id = :id"),
            {"t": datetime(2031, 5, 6, 7, 8, tzinfo=UTC), "id": another},
        )
    _migrate(api.engine, "head")
    with api.engine.connect() as conn:
        queued = set(conn.execute(sa.text("SELECT case_id FROM case_due")).scalars())
    assert queued == {open_case, another}
    assert due_queue_mismatches(api.engine) == []
    assert "ix_gg_case_next_check_at" not in _indexes(api.engine, "gg_case")
    act(api, "dispatcher", another, "register")  # the triggers keep it from here on
    act(api, "dispatcher", another, "dispatch")
    assert due_queue_mismatches(api.engine) == []
