"""Migration 0018 on SQLite and PostGIS: the candidates table and the intake index come and go
with upgrade and downgrade, and match the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from app.migrate import alembic_config
from core.db import unbounded
from dispatch.models import Case, DuplicateCandidate
from tests.conftest import Api


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.begin() as conn, unbounded(conn):
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()


def _indexes(engine: Engine, table: str) -> dict[str, list[str]]:
    return {
        ix["name"]: list(ix["column_names"])
        for ix in sa.inspect(engine).get_indexes(table)
        if ix["name"]
    }


def test_0018_down_and_up_again_matches_the_models(api: Api) -> None:
    engine = api.engine
    table = DuplicateCandidate.__table__  # type: ignore[attr-defined]
    assert _indexes(engine, "gg_case")["ix_gg_case_category_lat_lng"] == [
        "category_code",
        "lat",
        "lng",
    ]
    _migrate(engine, "0017", down=True)
    assert "duplicate_candidate" not in sa.inspect(engine).get_table_names()
    assert "ix_gg_case_category_lat_lng" not in _indexes(engine, "gg_case")
    _migrate(engine, "head")
    inspector = sa.inspect(engine)
    columns = {c["name"]: c for c in inspector.get_columns("duplicate_candidate")}
    assert set(columns) == {c.name for c in table.columns}
    assert all(not c["nullable"] for c in columns.values())
    assert inspector.get_pk_constraint("duplicate_candidate")["constrained_columns"] == [
        "case_id",
        "candidate_case_id",
    ]
    foreign = {
        (tuple(fk["constrained_columns"]), fk["referred_table"], fk["options"].get("ondelete"))
        for fk in inspector.get_foreign_keys("duplicate_candidate")
    }
    assert foreign == {
        (("case_id",), "gg_case", "CASCADE"),
        (("candidate_case_id",), "gg_case", "CASCADE"),
    }
    model_indexes = {ix.name for ix in table.indexes} | {
        ix.name
        for ix in Case.__table__.indexes  # type: ignore[attr-defined]
    }
    assert set(_indexes(engine, "duplicate_candidate")) <= model_indexes
    assert "ix_duplicate_candidate_candidate_case_id" in _indexes(engine, "duplicate_candidate")
