"""A receiver that is down is left alone for a growing while (a breaker per subscription), so a
dead receiver costs a batch of attempts per step instead of one per delivery and tick; the
healthy receivers beside it are served as before, and nothing is lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from core.db import session_scope
from notify.delivery import Breaker
from notify.models import OutboxDelivery
from tests.conftest import Api
from tests.notify.helpers import deliver, deliveries, report, subscribe
from tests.notify.receiver import receiver


def _deliver(api: Api, breaker: Breaker) -> dict[str, int]:
    return deliver(api, breaker=breaker, seed=7)


def test_a_down_receiver_waits_out_growing_steps_and_the_healthy_one_is_not_held_up(
    api: Api, demo_points: Any
) -> None:
    breaker = Breaker(base_seconds=10.0)
    with receiver(default=500) as down, receiver() as healthy:
        down_id = subscribe(api, down.url)
        healthy_id = subscribe(api, healthy.url)
        for _ in range(3):
            report(api, demo_points)
        start = api.clock.now
        assert _deliver(api, breaker) == {"claimed": 6, "delivered": 3, "failed_attempts": 3}
        assert breaker.skipped(start) == [down_id]
        for _ in range(3):
            report(api, demo_points)
        api.clock.now = start + timedelta(seconds=1)
        # Only the healthy receiver's three new events: the down one is not tried.
        assert _deliver(api, breaker) == {"claimed": 3, "delivered": 3, "failed_attempts": 0}
        assert (len(down.receipts), len(healthy.receipts)) == (3, 6)
        api.clock.now = start + timedelta(seconds=10)  # the first step is over: try again
        assert _deliver(api, breaker)["failed_attempts"] == 3  # one per case: its oldest due
        assert breaker.skipped(api.clock.now) == [down_id]
        api.clock.now = start + timedelta(seconds=29)  # the second step is twice as long
        assert _deliver(api, breaker)["claimed"] == 0
        down.default = 200  # back up
        api.clock.now = start + timedelta(seconds=30)
        counts = _deliver(api, breaker)
        assert counts["failed_attempts"] == 0
        assert counts["delivered"] == 6
        assert breaker.skipped(api.clock.now) == []
        assert breaker.failures == {}
    by_sub = {(d.subscription_id, d.status) for d, _ in deliveries(api)}
    assert by_sub == {(down_id, "delivered"), (healthy_id, "delivered")}
    assert len({r.delivery for r in down.accepted()}) == 6  # every event, once accepted


def test_deliveries_past_the_horizon_of_a_down_receiver_fail_without_an_attempt(
    api: Api, demo_points: Any
) -> None:
    breaker = Breaker(base_seconds=10.0)
    with receiver(default=503) as down:
        sub_id = subscribe(api, down.url)
        report(api, demo_points)
        assert _deliver(api, breaker)["failed_attempts"] == 1
        report(api, demo_points)  # never tried: the breaker is open
        with session_scope(api.engine) as session:
            session.execute(
                update(OutboxDelivery).values(retry_until=api.clock.now + timedelta(seconds=5))
            )
        api.clock.now += timedelta(seconds=6)  # past the horizon, breaker still open
        assert _deliver(api, breaker)["claimed"] == 0
        assert len(down.receipts) == 1
    rows = [(d.subscription_id, d.status, d.attempts, d.last_error) for d, _ in deliveries(api)]
    assert rows == [
        (sub_id, "failed", 1, "receiver down past the horizon"),
        (sub_id, "failed", 0, "receiver down past the horizon"),
    ]
