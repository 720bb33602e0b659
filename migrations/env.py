"""Alembic environment: the URL comes from gridgov's settings (or the caller's config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.migrate import include_object
from app.schema import metadata
from core.db import make_engine, unbounded

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    # One transaction, as `app.migrate.upgrade` runs it: on SQLite a connection holds the
    # process's write slot until it goes back to the pool, so a second BEGIN on it would wait.
    engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.begin() as conn, unbounded(conn):
        run_migrations(conn)
    engine.dispose()
