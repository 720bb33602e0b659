"""A database of one's own, for tests that damage it (audit tampering) or fill it (properties).

Migrating and demo-seeding takes ~10 s, so each backend is seeded once per session as a
template, and every test gets a copy: a file copy on SQLite, `CREATE DATABASE … TEMPLATE` on
PostgreSQL. Use `own_app` to run the service against the copy and the CLI on it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from app.db import make_engine
from app.main import create_app
from app.settings import Settings
from tests.conftest import (
    POSTGRES_ADMIN_URL,
    SECRET,
    Api,
    FakeClock,
    _drop_postgis,
    _postgis_url,
    _seed,
)


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
