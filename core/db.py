"""Engine, sessions and the geometry column type shared by every domain.

The request owns the transaction: `session_scope` commits on success and rolls back on any
error; services only flush. Geometry is PostGIS `geometry(…, 4326)` on PostgreSQL (GiST
indexed by the migrations) and WKB bytes on SQLite; code above this module only sees shapely.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import shapely
from geoalchemy2 import Geometry
from psycopg.abc import RV, PQGen
from shapely.geometry.base import BaseGeometry
from sqlalchemy import DateTime, LargeBinary, MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Session, SQLModel, create_engine

from core.errors import Busy, GridgovError, Unavailable
from core.settings import Settings, get_settings

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


# Connections a process may need beyond one per request thread: a nested read by each of the
# three per-process caches (grids, catalogue, calendars refresh under their own lock, maybe
# while their request thread holds a connection), the scheduler's sweep, the readiness probe.
POOL_RESERVE = 5


def pool_capacity(settings: Settings) -> int:
    """Connections per process: the pool cannot run dry under the request threads.

    Only a thread holding one of `request_threads` threadpool tokens (or a reserve user above)
    checks a connection out, and it holds at most its own plus one cache refresh; FastAPI closes
    sessions outside the token limit. So no thread ever waits for a connection that only a
    thread waiting for a token could give back (the freeze of issue 6). Lock waits do not pin
    threads either: actions on one case take turns before they get a thread (app/contention.py).
    """
    return settings.request_threads + POOL_RESERVE


def make_engine(url: str | None = None, *, settings: Settings | None = None) -> Engine:
    """One engine per process; every wait bounded (lock, statement, connect, pool)."""
    settings = settings or get_settings()
    url = url or settings.database_url
    if is_postgres(url):
        return _postgres_engine(url, settings)
    lock_timeout = settings.lock_timeout_seconds
    engine = create_engine(
        url,
        # Other processes' writers meet SQLite's busy timeout ("database is locked": busy).
        connect_args={"check_same_thread": False, "timeout": lock_timeout},
        poolclass=QueuePool,
        pool_size=pool_capacity(settings),
        max_overflow=0,
        pool_timeout=settings.pool_timeout_seconds,
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
        if not write_lock.acquire(timeout=lock_timeout):
            raise Busy()
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


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits at most `io_timeout` seconds for the server, then closes.

    The server's `statement_timeout` ends slow statements cleanly; this bounds a server that
    does not answer at all (hung, or black-holed behind a proxy that still acknowledges TCP),
    where the kernel's `tcp_user_timeout` never fires. The pool then throws the connection away.
    """

    io_timeout: float | None = None

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        try:
            return super().wait(gen, interval, timeout if timeout is not None else self.io_timeout)
        except psycopg.errors._WaitTimeout:
            self.pgconn.finish()  # mid-protocol: unusable; `closed` makes it a disconnect
            raise psycopg.OperationalError(
                f"the database did not answer within {self.io_timeout:g} s"
            ) from None


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _postgres_engine(url: str, settings: Settings) -> Engine:
    statement_timeout = settings.statement_timeout_seconds
    connect_timeout = settings.db_connect_timeout_seconds
    # The client gives up a second after the server would have cancelled the statement.
    io_timeout = statement_timeout + 1.0
    engine = create_engine(
        url,
        connect_args={
            "connect_timeout": max(2, math.ceil(connect_timeout)),
            # Set once per connection, so no request pays a `SET` round trip. (Behind PgBouncer
            # in transaction mode, set them on the role: `ALTER ROLE … SET lock_timeout …`.)
            # TimeZone UTC (the same instant as the server's usual Etc/UTC) makes psycopg hand
            # back datetimes with `datetime.UTC` itself, which `UTCDateTime` and the audit digest
            # then take as they are instead of converting each one.
            "options": f"-c lock_timeout={_ms(settings.lock_timeout_seconds)}"
            f" -c statement_timeout={_ms(statement_timeout)} -c TimeZone=UTC",
            # A server that vanished from the network: unacknowledged data drops the connection
            # after this long, and idle pooled connections are probed.
            "tcp_user_timeout": _ms(io_timeout),
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 3,
            "keepalives_count": 3,
        },
        pool_size=pool_capacity(settings),
        max_overflow=0,
        pool_timeout=settings.pool_timeout_seconds,
    )

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> BoundedConnection:
        conn = BoundedConnection.connect(*cargs, **cparams)
        conn.io_timeout = io_timeout
        return conn

    _ping_when_idle(engine)

    return engine


# A pooled connection unused this long is probed (`SELECT 1`) before a request gets it.
PING_AFTER_IDLE_SECONDS = 2.0


def _ping_when_idle(engine: Engine) -> None:
    """Replace, at checkout, a pooled connection that broke while it sat idle (the database
    restarted, a firewall dropped it), so the service recovers by itself when the database is
    back; a connection in steady use is not probed, which saves a round trip per request
    (SQLAlchemy's `pool_pre_ping` probes every checkout). One that breaks while in use fails
    its request (503 `unavailable`), and the error invalidates every older pooled connection."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi: Any, record: Any) -> None:
        record.info["used_at"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _used(_dbapi: Any, record: Any) -> None:
        record.info["used_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _probe(dbapi: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("used_at", 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with dbapi.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi.rollback()
        except psycopg.Error:
            # The pool discards this connection and checks out another (a new one if need be).
            raise sa_exc.DisconnectionError("pooled connection lost while idle") from None
        record.info["used_at"] = time.monotonic()


# PostgreSQL SQLSTATEs meaning "others hold what you need, retry shortly": lock_not_available
# (lock_timeout, NOWAIT), deadlock_detected, serialization_failure.
_BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001"})
# Classes meaning the server cannot serve now: connection exception, insufficient resources
# (too many connections), operator intervention (57014 statement timeout, 57P01 shutdown…).
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
# SQLite primary result codes: BUSY, LOCKED / NOMEM, IOERR, FULL, CANTOPEN, PROTOCOL.
_SQLITE_BUSY = frozenset({5, 6})
_SQLITE_UNAVAILABLE = frozenset({7, 10, 13, 14, 15})


def database_trouble(exc: BaseException) -> GridgovError | None:
    """What a database failure means to the caller: `Busy` (409, retry soon), `Unavailable`
    (503: down, unreachable, too slow), or None: a bug, left to be a 500."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection in time
        return Unavailable()
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _BUSY_SQLSTATES:
        return Busy()
    if exc.connection_invalidated:
        return Unavailable()
    if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
        return Unavailable()  # 57014 included: a statement over its timeout
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        if sqlite_code & 0xFF in _SQLITE_BUSY:
            return Busy()
        if sqlite_code & 0xFF in _SQLITE_UNAVAILABLE:
            return Unavailable()
        return None
    if isinstance(orig, psycopg.OperationalError) and sqlstate is None:
        # libpq failures carry no SQLSTATE: refused, timed out, lost (see BoundedConnection).
        return Unavailable()
    return None


def database_answers(engine: Engine) -> None:
    """Raise unless the database runs a trivial query now (readiness)."""
    with reader(engine).connect() as conn:
        conn.exec_driver_sql("SELECT 1")


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


@contextmanager
def unbounded(conn: Connection) -> Iterator[None]:
    """Maintenance in this transaction (migrations): no lock, statement or client time bound."""
    dbapi_conn = conn.connection.dbapi_connection
    if not isinstance(dbapi_conn, BoundedConnection):
        yield
        return
    conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
    conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
    saved, dbapi_conn.io_timeout = dbapi_conn.io_timeout, None
    try:
        yield
    finally:
        dbapi_conn.io_timeout = saved


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
        if value.tzinfo is UTC:  # PostgreSQL sessions run in UTC (see `_postgres_engine`)
            return value
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
