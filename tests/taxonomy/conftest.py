"""Fixtures of the catalogue tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine

from tests.conftest import Api, OwnApp


@dataclass(frozen=True)
class OwnDb:
    url: str
    engine: Engine
    api: Api


@pytest.fixture
def own_db(own_app: OwnApp) -> OwnDb:
    """The test's own demo-seeded database (imports add revisions), its API and CLI."""
    return OwnDb(own_app.url, own_app.engine, own_app.api)
