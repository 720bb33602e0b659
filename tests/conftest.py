"""Fixtures: one seeded database per backend (SQLite file, PostgreSQL + PostGIS), a movable clock.

PostGIS tests are mandatory when GRIDGOV_REQUIRE_POSTGIS=1 (CI): an unreachable server fails the
run instead of skipping. The PostGIS database is created, given the extension and migrated here.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.main import create_app
from app.migrate import upgrade
from core.db import make_engine, session_scope
from core.models import User
from core.security import issue_token
from core.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "GRIDGOV_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGIS = os.environ.get("GRIDGOV_REQUIRE_POSTGIS") == "1"
# A proper key (≥ 32 random-looking bytes): create_app refuses short or default ones.
SECRET = "gridgov-tests-7c1f9e4a2b8d5063-key-for-tests-only"


@dataclass
class FakeClock:
    """The one clock of a test: tests move it, nothing sleeps."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 24, 1, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now = self.now + timedelta(**kwargs)


def _postgis_url() -> str:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"gridgov_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if REQUIRE_POSTGIS:
            pytest.fail(f"PostGIS is required (GRIDGOV_REQUIRE_POSTGIS=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    finally:
        admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_postgis(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _seed(engine: Engine) -> None:
    from app import demo

    upgrade(engine)
    with session_scope(engine) as session:
        demo.seed(session, now=datetime(2026, 11, 1, tzinfo=UTC))


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)]
)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(name, url) of a migrated, demo-seeded database, shared by the tests of a session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'gridgov.db'}"
        engine = make_engine(url)
        _seed(engine)
        engine.dispose()
        yield "sqlite", url
    else:
        url = _postgis_url()
        engine = make_engine(url)
        try:
            _seed(engine)
            engine.dispose()
            yield "postgis", url
        finally:
            engine.dispose()
            _drop_postgis(url)


@pytest.fixture(scope="session")
def engines() -> Iterator[dict[str, Engine]]:
    cache: dict[str, Engine] = {}
    yield cache
    for engine in cache.values():
        engine.dispose()


@pytest.fixture
def engine(backend: tuple[str, str], engines: dict[str, Engine]) -> Engine:
    url = backend[1]
    if url not in engines:
        engines[url] = make_engine(url)
    return engines[url]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(backend: tuple[str, str]) -> Settings:
    return Settings(database_url=backend[1], secret_key=SECRET, grid_refresh_seconds=0.0)


@pytest.fixture
def client(settings: Settings, engine: Engine, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(settings=settings, engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@dataclass
class Api:
    """Calls as a given account; tokens are issued directly (password login is tested apart)."""

    client: TestClient
    engine: Engine
    clock: FakeClock

    def token(self, username: str) -> str:
        with Session(self.engine) as session:
            user = session.execute(select(User).where(User.username == username)).scalar_one()
            assert user.id is not None
            return issue_token(
                secret=SECRET,
                user_id=user.id,
                token_version=user.token_version,
                now=self.clock.now,
                ttl=3600,
            )

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def post(self, username: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=body, headers=self.headers(username), **kw)

    def get(self, username: str, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(username), **kw)


@pytest.fixture
def api(client: TestClient, engine: Engine, clock: FakeClock) -> Api:
    return Api(client, engine, clock)


@pytest.fixture(scope="session")
def demo_points() -> Callable[[str], tuple[float, float]]:
    """A WGS-84 (lng, lat) point well inside a given demo grid."""
    from grid.demo_district import build_chancheng

    shapes = {g.code: g.geometry for g in build_chancheng().grids}

    def point(code: str) -> tuple[float, float]:
        p = shapes[code].representative_point()
        return p.x, p.y

    return point


@pytest.fixture(scope="session")
def demo_grid_codes() -> list[str]:
    from grid.demo_district import build_chancheng

    return [g.code for g in build_chancheng().grids]


def new_client_id() -> str:
    return uuid.uuid4().hex


ROOT = Path(__file__).resolve().parent.parent


# A database of one's own, for tests that damage it (audit tampering, broken connections) or
# fill it (properties, imports, fuzzing). Migrating and demo-seeding takes seconds, so each
# backend is seeded once per session as a template, and every test gets a copy: a file copy on
# SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL. `own_app` runs the service on the copy
# and points the CLI at it.


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)]
)
def seeded_template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(backend, where): a migrated, demo-seeded database that is only ever copied."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        _seed(engine)
        engine.dispose()
        yield "sqlite", str(path)
        return
    url = _postgis_url()
    try:
        engine = make_engine(url)
        _seed(engine)
        engine.dispose()
        yield "postgis", url
    finally:
        _drop_postgis(url)


@pytest.fixture
def own_database(seeded_template: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh copy of the seeded template, dropped after the test."""
    backend, where = seeded_template
    if backend == "sqlite":
        target = tmp_path / "own.db"
        for suffix in ("", "-wal"):
            if Path(where + suffix).exists():
                shutil.copyfile(where + suffix, str(target) + suffix)
        yield f"sqlite:///{target}"
        return
    template = where.rsplit("/", 1)[1]
    name = f"{template}_copy_{uuid.uuid4().hex[:6]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()
    url = where.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        _drop_postgis(url)


@dataclass
class OwnApp:
    url: str
    engine: Engine
    settings: Settings
    api: Api


@pytest.fixture
def own_app(own_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[OwnApp]:
    """The service on a database of its own; the CLI (`app.cli.main`) points at it too."""
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", own_database)
    monkeypatch.setenv("GRIDGOV_SECRET_KEY", SECRET)
    settings = Settings(database_url=own_database, secret_key=SECRET, grid_refresh_seconds=0.0)
    engine = make_engine(own_database)
    clock = FakeClock()
    app = create_app(settings=settings, engine=engine, clock=clock)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield OwnApp(own_database, engine, settings, Api(client, engine, clock))
    finally:
        engine.dispose()
