"""Run Alembic programmatically, from the migrations folder shipped inside the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.schema import metadata
from core.db import unbounded

# Found, not imported: the migration environment imports this module (it sits above `app`).
_SPEC = importlib.util.find_spec("migrations")
if _SPEC is None or _SPEC.origin is None:
    raise ImportError("the migrations package is not installed beside gridgov")
MIGRATIONS_DIR = Path(_SPEC.origin).resolve().parent


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Only our tables: PostGIS brings its own (spatial_ref_sys, topology, tiger…)."""
    if type_ == "table" and reflected and compare_to is None:
        return name in metadata.tables
    return True


def schema_drift(engine: Engine) -> list[Any]:
    """What autogenerate would change: empty when the models and the migrated database agree."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        return list(compare_metadata(ctx, metadata))


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Migrate to head; on PostgreSQL make sure PostGIS is there first."""
    with engine.begin() as conn, unbounded(conn):
        if conn.dialect.name == "postgresql":
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
