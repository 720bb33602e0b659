"""Delivery workers as separate processes on one PostgreSQL: exactly once, and nothing lost when
one is killed mid-batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from core.clock import utcnow
from core.db import session_scope
from notify.delivery import DeliveryPolicy
from notify.models import OutboxDelivery
from tests.conftest import SECRET, OwnApp
from tests.notify.helpers import act, deliver, report, subscribe
from tests.notify.receiver import receiver

pytestmark = pytest.mark.parametrize("backend", ["postgis"], indirect=True)

GRIDGOV = str(Path(sys.executable).with_name("gridgov"))


def _env(own_app: OwnApp, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "GRIDGOV_DATABASE_URL": own_app.url,
        "GRIDGOV_SECRET_KEY": SECRET,
        **extra,
    }


def _file_cases(own_app: OwnApp, demo_points: Any, count: int) -> int:
    """`count` cases, every third registered and dispatched too: the number of events."""
    api = own_app.api
    events = 0
    for i in range(count):
        case_id = report(api, demo_points)
        events += 1
        if i % 3 == 0:
            act(api, "dispatcher", case_id, "register")
            act(api, "dispatcher", case_id, "dispatch")
            events += 2
    return events


def _per_case_in_order(receipts: list[Any]) -> bool:
    seen: dict[int, list[int]] = {}
    for r in receipts:
        body = r.json
        seen.setdefault(body["case"]["id"], []).append(body["id"])
    return all(ids == sorted(ids) for ids in seen.values())


def test_two_worker_processes_deliver_every_event_exactly_once(
    own_app: OwnApp, demo_points: Any
) -> None:
    with receiver() as hook:
        subscribe(own_app.api, hook.url)
        events = _file_cases(own_app, demo_points, 90)
        env = _env(own_app, GRIDGOV_OUTBOX_BATCH="10", GRIDGOV_OUTBOX_CONCURRENCY="2")
        workers = [
            subprocess.Popen(
                [GRIDGOV, "outbox", "run", "--once"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [w.communicate(timeout=120) for w in workers]
        assert [w.returncode for w in workers] == [0, 0], outputs
        # A case's later events wait for its earlier ones: a worker may stop before they are
        # due for it; run again until nothing is left (at most a few rounds).
        for _ in range(5):
            again = subprocess.run(
                [GRIDGOV, "outbox", "run", "--once"], env=env, capture_output=True, text=True
            )
            assert again.returncode == 0, again.stderr
            if json.loads(again.stdout.strip().splitlines()[-1])["claimed"] == 0:
                break
    counts = Counter(r.delivery for r in hook.receipts)
    assert len(counts) == events
    assert set(counts.values()) == {1}  # exactly once
    per_worker = [json.loads(out.strip().splitlines()[-1])["delivered"] for out, _ in outputs]
    assert all(n > 0 for n in per_worker), per_worker  # both took part
    assert _per_case_in_order(hook.receipts)


def test_kill_9_mid_batch_loses_nothing(own_app: OwnApp, demo_points: Any) -> None:
    api = own_app.api
    with receiver(hang=True) as hook:
        subscribe(api, hook.url)
        events = _file_cases(own_app, demo_points, 30)
        worker = subprocess.Popen(
            [GRIDGOV, "outbox", "run"],
            env=_env(own_app, GRIDGOV_OUTBOX_BATCH="10", GRIDGOV_OUTBOX_CONCURRENCY="2"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert hook.wait_for(2), "the worker sent nothing"
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
        with session_scope(api.engine) as session:
            leased = session.exec(
                select(OutboxDelivery).where(OutboxDelivery.lease_token.is_not(None))  # type: ignore[union-attr]
            ).all()
        assert len(leased) == 10  # its batch, claimed and never recorded
        hook.hang.set()  # type: ignore[union-attr]
        hung = len(hook.receipts)
        # Before the lease expires nobody takes them; after it, another worker delivers all.
        api.clock.now = utcnow()
        policy = DeliveryPolicy(timeout_seconds=5.0, concurrency=4, batch=100)
        deliver(api, policy)
        still = {d.id: d.lease_token for d in _all(api) if d.id in {x.id for x in leased}}
        assert still == {d.id: d.lease_token for d in leased}  # untouched while leased
        api.clock.now = utcnow() + timedelta(seconds=121)
        for _ in range(5):
            if deliver(api, policy)["claimed"] == 0:
                break
    assert {d.status for d in _all(api)} == {"delivered"}
    counts = Counter(r.delivery for r in hook.receipts)
    assert len(counts) == events  # nothing lost
    # Repeats only for what the killed worker had sent (at least once, same id).
    assert sum(counts.values()) - events <= hung


def _all(api: Any) -> list[OutboxDelivery]:
    with session_scope(api.engine) as session:
        return list(session.exec(select(OutboxDelivery)).all())
