"""Engine, sessions and the geometry column type shared by every domain.

The request owns the transaction: `session_scope` commits on success and rolls back on any
error; services only flush. Geometry is PostGIS `geometry(…, 4326)` on PostgreSQL (GiST
indexed by the migrations) and WKB bytes on SQLite; code above this module only sees shapely.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import shapely
from geoalchemy2 import Geometry
from shapely.geometry.base import BaseGeometry
from sqlalchemy import DateTime, LargeBinary, MetaData, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Session, SQLModel, create_engine

from app.settings import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

SRID = 4326


class GeometryType(TypeDecorator[BaseGeometry]):
    """A shapely geometry in WGS-84: PostGIS geometry on PostgreSQL, WKB on SQLite."""

    impl = LargeBinary
    cache_ok = True
    # Read by geoalchemy2's DDL hooks: the GiST index is declared explicitly on each table.
    spatial_index = False
    use_N_D_index = False
    srid = SRID
    dimension = 2
    nullable = True

    def __init__(self, geometry_type: str = "GEOMETRY") -> None:
        super().__init__()
        self.geometry_type = geometry_type

    def __repr__(self) -> str:
        return f"GeometryType({self.geometry_type!r})"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect is None:  # geoalchemy2's DDL hooks probe the type without a dialect
            return LargeBinary()
        if dialect.name == "postgresql":
            return dialect.type_descriptor(
                Geometry(geometry_type=self.geometry_type, srid=SRID, spatial_index=False)
            )
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: BaseGeometry | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return shapely.to_wkb(shapely.set_srid(value, SRID), hex=True, include_srid=True)
        return shapely.to_wkb(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> BaseGeometry | None:
        if value is None:
            return None
        data = getattr(value, "data", value)  # geoalchemy2 WKBElement or raw bytes / hex
        if isinstance(data, memoryview):
            data = bytes(data)
        geom: BaseGeometry = shapely.from_wkb(data)
        return geom


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def make_engine(url: str | None = None) -> Engine:
    """One engine per process; SQLite gets WAL, foreign keys and serialised writers."""
    url = url or get_settings().database_url
    if is_postgres(url):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=QueuePool,
        pool_size=8,
        max_overflow=24,
    )
    # Writers of this process queue on a lock (woken at once when the holder is done) rather
    # than on SQLite's busy handler, which sleeps with back-off; other processes still meet
    # the busy timeout.
    write_lock = threading.Lock()

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Own the transaction boundaries (pysqlite's implicit BEGIN is too late for writers).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # Writers take the database lock at BEGIN (IMMEDIATE), so a read that turns into a
        # write can never fail on a stale snapshot; readers (see `reader`) never block.
        if conn.get_execution_options().get("gridgov_readonly"):
            conn.exec_driver_sql("BEGIN")
            return
        if not write_lock.acquire(timeout=30):
            raise TimeoutError("database busy: no write slot within 30 s")
        conn.info["gridgov_write_lock"] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            conn.info.pop("gridgov_write_lock", None)
            write_lock.release()
            raise

    def _release(conn: Any) -> None:
        if conn.info.pop("gridgov_write_lock", False):
            write_lock.release()

    # Released when the connection goes back to the pool, i.e. after its COMMIT or ROLLBACK
    # (the engine's commit/rollback events fire before those run), or when it is thrown away.
    event.listen(engine.pool, "checkin", lambda _dbapi, record: _release(record))
    event.listen(engine.pool, "invalidate", lambda _dbapi, record, _exc: _release(record))
    event.listen(engine.pool, "soft_invalidate", lambda _dbapi, record, _exc: _release(record))
    return engine


def reader(engine: Engine) -> Engine:
    """The same engine for read-only work: on SQLite it does not take the write lock."""
    return engine.execution_options(gridgov_readonly=True)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any exception."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on every backend (SQLite drops tzinfo otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
