"""Two `gridgov sweep` processes at once on one PostgreSQL: every card and escalation step is
written exactly once per case (history rows counted), each escalation told exactly once (the
outbox's `case.escalated` rows counted), and both processes take part."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.clock import utcnow
from grid.coords import wgs84_to_gcj02
from tests.conftest import SECRET, OwnApp, new_client_id
from tests.notify.helpers import subscribe

pytestmark = pytest.mark.parametrize("backend", ["postgis"], indirect=True)

GRIDGOV = str(Path(sys.executable).with_name("gridgov"))
GRID = "440604011001001"
CASES = 120


def _wait_for_lock_waiters(own_app: OwnApp, count: int) -> None:
    """Until `count` other sessions of the test's database wait for a lock (bounded: 60 s).
    This waits for other processes to get somewhere, not for time to pass."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 60
    with own_app.engine.connect() as probe:
        while probe.execute(query).scalar_one() < count:
            probe.rollback()
            assert time.monotonic() < deadline, "the sweep processes never reached the lock"
            time.sleep(0.05)


def test_two_sweep_processes_escalate_each_case_exactly_once(
    own_app: OwnApp, demo_points: Any
) -> None:
    api = own_app.api
    subscribe(api, "http://127.0.0.1:9/escalations", events=["case.escalated"])  # never sent
    # `gridgov sweep` runs at the real time: file the cases 30 days before it, so every case
    # is past its whole ladder (red, then levels 1 to 3) when the processes sweep.
    api.clock.advance(seconds=(utcnow() - timedelta(days=30) - api.clock.now).total_seconds())
    g_lng, g_lat = wgs84_to_gcj02(*demo_points(GRID))
    dispatched = set()
    for i in range(CASES):
        body = {"client_id": new_client_id(), "lat": g_lat, "lng": g_lng, "crs": "gcj02"}
        res = api.post(f"gw{GRID}", "/v1/reports", {**body, "description": "路口井盖丢失"})
        assert res.status_code == 201, res.text
        if i % 4 == 0:  # these also run the 签收 stage limit
            for action in ("register", "dispatch"):
                path = f"/v1/cases/{res.json()['id']}/{action}"
                assert api.post("dispatcher", path, {}).status_code == 200
            dispatched.add(res.json()["id"])

    env = {
        **os.environ,
        "GRIDGOV_DATABASE_URL": own_app.url,
        "GRIDGOV_SECRET_KEY": SECRET,
        "GRIDGOV_SWEEP_BATCH": "10",
        "GRIDGOV_LOCK_TIMEOUT_SECONDS": "50",
        "GRIDGOV_STATEMENT_TIMEOUT_SECONDS": "60",
    }
    # Both processes must really overlap: the test holds the audit log's head, so each one
    # claims its first batch (SKIP LOCKED) and then waits to write its history; once both
    # wait, the head is released and they race through the rest.
    with own_app.engine.connect() as holder:
        holder.execute(text("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE"))
        sweeps = [
            subprocess.Popen(
                [GRIDGOV, "sweep"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        _wait_for_lock_waiters(own_app, 2)
        holder.rollback()
    outputs = [s.communicate(timeout=300) for s in sweeps]
    assert [s.returncode for s in sweeps] == [0, 0], outputs
    totals = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(t["checked"] > 0 for t in totals), totals  # both took part
    assert sum(t["checked"] for t in totals) == CASES

    with own_app.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT case_id, action FROM case_history WHERE action LIKE 'sla_%' "
                "OR action LIKE 'stage_%'"
            )
        ).all()
        levels = conn.execute(text("SELECT DISTINCT escalation_level FROM gg_case")).scalars()
        assert set(levels) == {3}
        told = conn.execute(
            text("SELECT case_id, escalation FROM outbox_event WHERE type = 'case.escalated'")
        ).all()
    per_case = Counter((case_id, action) for case_id, action in rows)
    assert set(per_case.values()) == {1}  # no step twice
    escalations: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for case_id, escalation in told:
        escalations[case_id].append((escalation["level"], escalation["area_code"]))
    for case_id in {case_id for case_id, _ in rows}:
        # Urgent (井盖): red and the 镇街 at once, then the district: one jump, told once.
        expected = {"sla_overdue", "sla_escalated"}
        told_to = [(3, GRID[:6])]
        if case_id in dispatched:  # and the 签收 stage's red card, told to the 村居
            expected.add("stage_overdue")
            told_to.append((1, GRID[:12]))
        assert {a for (c, a) in per_case if c == case_id} == expected
        assert sorted(escalations[case_id]) == sorted(told_to), case_id
    assert len(told) == CASES + len(dispatched)
    assert len({case_id for case_id, _ in rows}) == CASES
    # Sweeping again finds nothing due.
    again = subprocess.run([GRIDGOV, "sweep"], env=env, capture_output=True, text=True)
    assert json.loads(again.stdout.strip().splitlines()[-1])["checked"] == 0
