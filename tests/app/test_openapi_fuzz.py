"""Schemathesis against the OpenAPI schema: no 5xx, and every answer matches what the schema says.

Generated requests (valid ones and ones that break the schema) go to every operation as a
dispatcher and as a grid worker, on a database of its own per backend (they file reports and act
on cases).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select
from sqlmodel import Session, col

from app.db import make_engine
from app.main import create_app
from app.models import User
from app.security import issue_token
from app.settings import Settings
from tests.conftest import SECRET, _drop_postgis, _postgis_url, _seed

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# Random points lie outside the district: one request inside it, so that intake and placement
# run to the end under the checks too.
VALID: dict[str, dict[str, Any]] = {
    "POST /v1/reports": {
        "body": {
            "client_id": "fuzz-0001",
            "lat": 23.009244,
            "lng": 113.126964,
            "crs": "gcj02",
            "description": "石湾镇街道某路口井盖丢失，很危险",
        }
    },
    "GET /v1/grids/locate": {"query": {"lat": "23.009244", "lng": "113.126964", "crs": "gcj02"}},
}
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def _clock() -> datetime:
    return NOW


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)]
)
def fuzz_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    if request.param == "sqlite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'gridgov.db'}"
    else:
        url = _postgis_url()
    engine = make_engine(url)
    try:
        _seed(engine)
        app = create_app(
            settings=Settings(database_url=url, secret_key=SECRET, grid_refresh_seconds=0.0),
            engine=engine,
            clock=_clock,
        )
        with Session(engine) as session:
            users = session.execute(
                select(User).where(col(User.username).in_(["dispatcher", "gw440604011001001"]))
            ).scalars()
            app.state.fuzz_users = [(u.id, u.token_version) for u in users]
        yield app
    finally:
        engine.dispose()
        if request.param == "postgis":
            _drop_postgis(url)


def test_every_answer_matches_the_schema_and_none_is_a_server_error(fuzz_app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    failures: list[str] = []
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        seen = statuses[operation.label]
        cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )
        if operation.label in VALID:
            cases = cases | operation.as_strategy(**VALID[operation.label])

        @given(case=cases)
        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            # A dispatcher, then a grid worker; a fresh token each time (logout revokes one).
            for user_id, version in fuzz_app.state.fuzz_users:
                token = issue_token(
                    secret=SECRET, user_id=user_id, token_version=version, now=NOW, ttl=3600
                )
                answer = case.call_and_validate(
                    headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
                )
                seen[answer.status_code] += 1  # noqa: B023 - run() is called right away

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected and reported together below
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert len(fuzz_app.state.fuzz_users) == 2
    assert operations > 10
    # The run reached the code behind the checks: valid requests were accepted.
    for label in ("POST /v1/reports", "GET /v1/cases", "GET /v1/grids/locate"):
        assert sum(n for s, n in statuses[label].items() if s < 300) > 0, (label, statuses[label])
    assert not failures, "\n\n".join(failures)
