"""Fixtures: a database of its own for every test on each backend (SQLite file, PostgreSQL +
PostGIS), copied from a seeded template; a movable clock.

PostGIS tests are mandatory when GRIDGOV_REQUIRE_POSTGIS=1 (CI): an unreachable server fails the
run instead of skipping. The PostGIS template is created, given the extension and migrated here.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
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
from tests.clones import CloneStats, PostgresClones, copy_sqlite, remove_sqlite

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


def _worker() -> str:
    """The pytest-xdist worker running this process ("gw0", "gw1", ...), "main" without xdist:
    each worker makes its own template and copies, named after it."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgis_url() -> str:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"gridgov_test_{_worker()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
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


# Every test that uses the database gets one of its own, copied from a migrated, demo-seeded
# template made once per backend and session (see tests/clones.py), and dropped after the test:
# what a test writes is seen by no other test, whatever the order.


SQLITE_COPIES = CloneStats()
POSTGIS_COPIES: list[CloneStats] = []
# Under pytest-xdist the copies are made in the workers: each sends its counts back when it
# ends (`workeroutput`) and the controller adds them up for the summary.
WORKER_COPIES: dict[str, CloneStats] = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its counts go to the controller
        workeroutput["gridgov_copies"] = [
            ("sqlite", asdict(SQLITE_COPIES)),
            *(("postgis", asdict(stats)) for stats in POSTGIS_COPIES),
        ]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the xdist controller: a worker's counts, added to the others'."""
    for backend, counts in getattr(node, "workeroutput", {}).get("gridgov_copies", []):
        WORKER_COPIES.setdefault(backend, CloneStats()).add(CloneStats(**counts))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per backend: what the tests' own databases cost (all workers together)."""
    if SQLITE_COPIES.made:
        terminalreporter.write_line(SQLITE_COPIES.line("sqlite"))
    for stats in POSTGIS_COPIES:
        terminalreporter.write_line(stats.line("postgis"))
    for backend, stats in WORKER_COPIES.items():
        if stats.made:
            terminalreporter.write_line(stats.line(backend))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    _seed(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _postgis_clones() -> Iterator[PostgresClones]:
    url = _postgis_url()
    try:
        engine = make_engine(url)
        try:
            _seed(engine)
        finally:
            engine.dispose()
        clones = PostgresClones(POSTGRES_ADMIN_URL, url.rsplit("/", 1)[1])
        POSTGIS_COPIES.append(clones.stats)
        try:
            yield clones
        finally:
            clones.close()
    finally:
        _drop_postgis(url)


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(name, url) of the test's own migrated, demo-seeded database."""
    if request.param == "sqlite":
        target = tmp_path / "gridgov.db"
        template = request.getfixturevalue("_sqlite_template")
        started = time.perf_counter()
        copy_sqlite(template, target)
        spent = time.perf_counter() - started
        SQLITE_COPIES.made += 1
        SQLITE_COPIES.make_seconds += spent
        SQLITE_COPIES.waited_seconds += spent
        yield "sqlite", f"sqlite:///{target}"
        remove_sqlite(target)
        return
    clones: PostgresClones = request.getfixturevalue("_postgis_clones")
    name = clones.take()
    try:
        yield "postgis", POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        clones.give_back(name)


@pytest.fixture
def settings(backend: tuple[str, str], tmp_path: Path) -> Settings:
    # Uploaded photos in the test's own directory (the default on PostgreSQL is the working one).
    return Settings(
        database_url=backend[1],
        secret_key=SECRET,
        grid_refresh_seconds=0.0,
        attachment_dir=str(tmp_path / "attachments"),
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """The test's engine on its database, disposed after it (no connection outlives a test)."""
    engine = make_engine(settings=settings)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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


@dataclass
class OwnApp:
    url: str
    engine: Engine
    settings: Settings
    api: Api


@pytest.fixture
def own_app(
    settings: Settings, engine: Engine, api: Api, monkeypatch: pytest.MonkeyPatch
) -> OwnApp:
    """The test's service and database, with the CLI (`app.cli.main`) pointed at it too."""
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GRIDGOV_SECRET_KEY", SECRET)
    return OwnApp(settings.database_url, engine, settings, api)
