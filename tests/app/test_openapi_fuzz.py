"""Schemathesis against the OpenAPI schema: no 5xx, and every answer matches what the schema says.

Generated requests (valid ones and ones that break the schema) go to every operation as a
dispatcher and as a grid worker, on a database of its own (they file reports and act
on cases).
"""

from __future__ import annotations

from collections import Counter, defaultdict
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

from core.models import User
from core.security import issue_token
from tests.conftest import SECRET, OwnApp

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


# Answers that never end by themselves (server-sent events): tested under a real server in
# tests/app/test_events_stream.py.
ENDLESS = frozenset({"GET /v1/events/stream"})


@pytest.fixture
def fuzz_app(own_app: OwnApp) -> Any:
    app = own_app.api.client.app
    with Session(own_app.engine) as session:
        users = session.execute(
            select(User).where(col(User.username).in_(["dispatcher", "gw440604011001001"]))
        ).scalars()
        app.state.fuzz_users = [(u.id, u.token_version) for u in users]  # type: ignore[attr-defined]
    app.state.fuzz_now = own_app.api.clock.now  # type: ignore[attr-defined]
    return app


def test_every_answer_matches_the_schema_and_none_is_a_server_error(fuzz_app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    failures: list[str] = []
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in ENDLESS:
            continue
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
                    secret=SECRET,
                    user_id=user_id,
                    token_version=version,
                    now=fuzz_app.state.fuzz_now,
                    ttl=3600,
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
