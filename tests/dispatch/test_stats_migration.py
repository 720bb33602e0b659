"""Migration 0012 on a rollup written before it (department × grid daily rows), on SQLite and
PostGIS: the rows become exactly what a refresh now writes, the figures stay those computed
live, and nothing has to be recomputed; downgrade empties the rollup for a rebuild."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.migrate import alembic_config
from core.db import unbounded
from dispatch.stats import COUNT_FIELDS
from dispatch.stats_rollup import chunks, detail_query, refresh
from tests.conftest import Api
from tests.dispatch.test_stats_http import CGJ, PERIOD
from tests.dispatch.test_stats_rollup import (
    TZ,
    _assert_rollup_equals_live,
    _department_week,
    _periods,
    _scopes,
    _state,
    week,  # noqa: F401 (the fixture)
)

COUNTS = ", ".join(COUNT_FIELDS)
SUMS = ", ".join(f"sum({name})" for name in COUNT_FIELDS)


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as conn, unbounded(conn):
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()  # no pooled connection keeps a plan of the old tables


def _rows(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    """(day or month, department, area, counts...) of every row, sorted."""
    period = "month" if table == "stats_monthly" else "day"
    sql = f"SELECT {period}, department_code, area_code, {COUNTS} FROM {table}"
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.text(sql)))


def _write_0011_rollup(engine: Engine, days: list[date], through: date, gseq: int) -> None:
    """The rollup as revision 0011 wrote it: daily rows per day, department and grid (the
    detail a refresh still computes), monthly rows per department and village and per grid."""
    with Session(engine) as session:
        for chunk in chunks(days, TZ):
            detail = detail_query(session, chunk, TZ).subquery()
            rows = session.execute(sa.select(detail)).all()
            session.execute(
                sa.text(
                    f"INSERT INTO stats_daily (day, department_code, grid_code, {COUNTS})"
                    f" VALUES (:day, :department, :grid, "
                    + ", ".join(f":{n}" for n in COUNT_FIELDS)
                    + ")"
                ),
                [r._asdict() for r in rows],
            )
        month_columns = f"month, department_code, area_code, {COUNTS}"
        for month in sorted({d.replace(day=1) for d in days}):
            following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
            where = "WHERE day >= :month AND day < :following"
            params = {"month": month, "following": following}
            session.execute(
                sa.text(
                    f"INSERT INTO stats_monthly ({month_columns}) SELECT :month, department_code,"
                    f" substr(grid_code, 1, 12), {SUMS} FROM stats_daily {where}"
                    " GROUP BY department_code, substr(grid_code, 1, 12)"
                ),
                params,
            )
            session.execute(
                sa.text(
                    f"INSERT INTO stats_monthly ({month_columns}) SELECT :month, '', grid_code,"
                    f" {SUMS} FROM stats_daily {where} GROUP BY grid_code"
                ),
                params,
            )
        session.execute(
            sa.text("UPDATE stats_rollup SET rolled_through = :d, gseq = :g WHERE id = 1"),
            {"d": through, "g": gseq},
        )
        session.commit()


def test_0012_converts_the_rollup_and_downgrade_empties_it(
    api: Api,
    week: str,  # noqa: F811 (the fixture imported above)
) -> None:
    engine = api.engine
    done = refresh(engine, clock=api.clock, tz=TZ)
    assert done.rolled_through == date(2026, 12, 1)
    daily, monthly = _rows(engine, "stats_daily"), _rows(engine, "stats_monthly")
    days = sorted({date.fromisoformat(str(row[0])) for row in daily})
    assert len(days) == 6
    assert len(monthly) > 0

    _migrate(engine, "0011", down=True)
    with engine.connect() as conn:
        emptied = [
            conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("stats_daily", "stats_monthly")
        ]
    assert emptied == [0, 0]
    assert (_state(api).rolled_through, _state(api).gseq) == (None, 0)  # rebuilt next refresh
    # Before 0012 a refresh wrote one row per day, department and grid.
    _write_0011_rollup(engine, days, done.rolled_through, done.gseq)
    with engine.connect() as conn:
        old = conn.execute(sa.text("SELECT count(*) FROM stats_daily")).scalar_one()
    assert old > 0

    _migrate(engine, "head")
    assert _rows(engine, "stats_daily") == daily
    assert _rows(engine, "stats_monthly") == monthly
    assert (_state(api).rolled_through, _state(api).gseq) == (done.rolled_through, done.gseq)
    # Nothing left to recompute, and the answers read the converted rows.
    assert refresh(engine, clock=api.clock, tz=TZ).days == 0
    assert _department_week(api, "CGJ", PERIOD) == CGJ
    periods = _periods(("2026-11-24", "2026-11-30"), ("2026-11-01", "2026-11-30"))
    assert _assert_rollup_equals_live(api, periods, _scopes(week)) > 100
