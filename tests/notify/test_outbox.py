"""The outbox and its delivery: retries with backoff, signatures, routing, order, the horizon."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from click.testing import CliRunner
from sqlmodel import select

from app.cli import main as cli
from core.db import session_scope
from dispatch.tasks import run_sweep
from notify.delivery import RETRY_CAP_SECONDS, DeliveryPolicy
from notify.models import OutboxDelivery, OutboxEvent
from tests.conftest import Api, OwnApp
from tests.notify.helpers import GRID, SECRET, act, deliver, deliveries, report, subscribe
from tests.notify.receiver import receiver, refused_url

REPORTS = 500  # the load: a dead receiver while 500 reports are filed


def test_failing_twice_then_accepted_once_with_one_delivery_id_and_valid_signatures(
    api: Api, demo_points: Any
) -> None:
    with receiver(script=[500, 503]) as hook:
        subscribe(api, hook.url)
        case_id = report(api, demo_points)
        reported_at = api.clock.now
        assert hook.receipts == []  # nothing is sent inside the request
        assert deliver(api)["claimed"] == 1
        [(first, event)] = deliveries(api)
        assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
        # First retry after the base (10 s), with at most 25 % jitter.
        wait = (first.next_attempt_at - reported_at).total_seconds()
        assert 10 <= wait <= 12.5
        api.clock.now = first.next_attempt_at - timedelta(seconds=1)
        assert deliver(api)["claimed"] == 0
        api.clock.now = first.next_attempt_at
        assert deliver(api)["claimed"] == 1
        [(second, _)] = deliveries(api)
        assert second.attempts == 2
        wait = (second.next_attempt_at - first.next_attempt_at).total_seconds()
        assert 20 <= wait <= 25  # doubled
        api.clock.now = second.next_attempt_at
        assert deliver(api) == {"claimed": 1, "delivered": 1, "failed_attempts": 0}
        assert deliver(api)["claimed"] == 0
    [(done, _)] = deliveries(api)
    assert (done.status, done.attempts) == ("delivered", 3)
    assert len(hook.receipts) == 3
    assert len(hook.accepted()) == 1
    assert {r.delivery for r in hook.receipts} == {str(event.id)}
    assert all(r.signed_by(SECRET) for r in hook.receipts)
    assert not hook.receipts[0].signed_by(SECRET + "x")
    body = hook.accepted()[0].json
    assert set(body) == {"id", "type", "occurred_at", "case"}
    assert (body["id"], body["type"]) == (event.id, "case.reported")
    assert body["case"]["id"] == case_id
    assert body["case"]["status"] == "reported"
    assert "history" not in body["case"]
    assert hook.receipts[0].headers["x-gridgov-event"] == "case.reported"


def test_retries_are_capped_at_an_hour_and_fail_after_the_horizon_then_retry_resends(
    own_app: OwnApp, demo_points: Any
) -> None:
    api = own_app.api
    with receiver(default=500) as hook:
        subscribe(api, hook.url)
        report(api, demo_points)
        start = api.clock.now
        waits = []
        while True:
            assert deliver(api)["claimed"] == 1
            [(d, _)] = deliveries(api)
            if d.status == "failed":
                break
            waits.append((d.next_attempt_at - api.clock.now).total_seconds())
            api.clock.now = d.next_attempt_at
        assert api.clock.now - start >= timedelta(hours=24)
        assert max(waits) <= RETRY_CAP_SECONDS
        assert waits[-1] >= RETRY_CAP_SECONDS / 1.25 * 0.99  # reached the cap
        assert all(b >= a * 0.8 for a, b in zip(waits, waits[1:], strict=False))
        assert len(hook.receipts) == d.attempts
        listed = CliRunner().invoke(cli, ["outbox", "list", "--failed"])
        assert listed.exit_code == 0, listed.output
        assert '"status": "failed"' in listed.output
        assert f'"id": {d.id}' in listed.output
        hook.default = 200
        retried = CliRunner().invoke(cli, ["outbox", "retry", str(d.id)])
        assert retried.exit_code == 0, retried.output
        # `retry` stamps the wall clock: deliver at a time after it.
        api.clock.now = api.clock.now.__class__.now(api.clock.now.tzinfo) + timedelta(seconds=1)
        assert deliver(api)["delivered"] == 1
    assert len(hook.accepted()) == 1
    assert CliRunner().invoke(cli, ["outbox", "list", "--failed"]).output.strip() == "[]"
    missing = CliRunner().invoke(cli, ["outbox", "retry", "999999"])
    assert missing.exit_code == 2
    assert "delivery_not_found" in missing.output


def test_routing_by_department_area_all_and_escalation_level(
    api: Api, demo_points: Any, demo_grid_codes: list[str]
) -> None:
    other_town = next(c for c in demo_grid_codes if c[:9] != GRID[:9])
    url = "http://127.0.0.1:9/hook"  # never called here: routing is decided at the change
    everything = subscribe(api, url)
    cgj = subscribe(api, url, department="CGJ")
    zjj = subscribe(api, url, department="ZJJ")
    town = subscribe(api, url, area=GRID[:9])
    other = subscribe(api, url, area=other_town[:9])
    village = subscribe(api, url, area=GRID[:12])
    district = subscribe(api, url, area=GRID[:6])
    only_dispatched = subscribe(api, url, events=["case.dispatched"])
    case_id = report(api, demo_points)
    act(api, "dispatcher", case_id, "register")
    act(api, "dispatcher", case_id, "dispatch")
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    for hours in (6, 3, 24):  # red (level 1), level 2, level 3
        api.clock.advance(hours=hours)
        run_sweep(api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy)
    taken: dict[int, list[int]] = {}
    events: dict[int, OutboxEvent] = {}
    for d, e in deliveries(api):
        assert e.id is not None
        taken.setdefault(d.subscription_id, []).append(e.id)
        events[e.id] = e
    # Everything reaches the subscription without a scope, in order.
    assert taken[everything] == sorted(events)
    types = [events[i].type for i in taken[everything]]
    assert types[:3] == ["case.reported", "case.registered", "case.dispatched"]
    named = [events[i].escalation for i in taken[everything] if events[i].type == "case.escalated"]
    assert len({e["level"] for e in named if e}) >= 2  # the sweeps climbed the ladder
    assert [events[i].type for i in taken[only_dispatched]] == ["case.dispatched"]
    # The department: every event from its dispatch on, escalations included.
    dispatched = next(i for i in sorted(events) if events[i].type == "case.dispatched")
    assert taken[cgj] == [i for i in sorted(events) if i >= dispatched]
    assert zjj not in taken
    assert other not in taken
    # Areas holding the case: its events, but each escalation only to the area it names.
    for sub, level, code in ((village, 1, GRID[:12]), (town, 2, GRID[:9]), (district, 3, GRID[:6])):
        escalations = [
            events[i].escalation for i in taken[sub] if events[i].type == "case.escalated"
        ]
        assert escalations == [e for e in named if e and e["area_code"] == code]
        assert all(e is not None and e["level"] == level for e in escalations)
        others = [i for i in sorted(events) if events[i].type != "case.escalated"]
        assert [i for i in taken[sub] if events[i].type != "case.escalated"] == others


def test_escalation_body_names_level_and_area(api: Api, demo_points: Any) -> None:
    with receiver() as hook:
        subscribe(api, hook.url, events=["case.escalated"])
        case_id = report(api, demo_points)
        runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
        api.clock.advance(hours=6)
        run_sweep(api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy)
        assert deliver(api)["delivered"] >= 1
    body = hook.receipts[0].json
    assert set(body) == {"id", "type", "occurred_at", "case", "escalation"}
    level = body["escalation"]["level"]
    digits = {1: 12, 2: 9, 3: 6}[level]
    assert body["escalation"] == {"level": level, "area_code": GRID[:digits]}
    assert body["case"]["id"] == case_id
    assert body["case"]["escalation_level"] == level


def test_a_case_reaches_a_subscription_in_order_even_when_an_early_event_is_retried(
    api: Api, demo_points: Any
) -> None:
    with receiver(script=[500]) as hook:
        subscribe(api, hook.url)
        first = report(api, demo_points)
        act(api, "dispatcher", first, "register")
        act(api, "dispatcher", first, "dispatch")
        second = report(api, demo_points)
        # Only the oldest pending delivery of each case is claimed; the first one fails.
        assert deliver(api)["claimed"] == 2
        assert [r.json["case"]["id"] for r in hook.receipts] == [first, second]
        api.clock.advance(seconds=5)
        assert deliver(api)["claimed"] == 0  # `case.registered` waits for `case.reported`
        api.clock.advance(seconds=10)
        for _ in range(3):
            deliver(api)
    order = [(r.json["case"]["id"], r.json["type"]) for r in hook.accepted()]
    assert [t for c, t in order if c == first] == [
        "case.reported",
        "case.registered",
        "case.dispatched",
    ]
    assert {d.status for d, _ in deliveries(api)} == {"delivered"}


def test_dead_and_hung_receivers_do_not_touch_intake(api: Api, demo_points: Any) -> None:
    with receiver(hang=True) as hung:
        subscribe(api, refused_url())
        subscribe(api, hung.url)
        for _ in range(REPORTS):
            report(api, demo_points)  # each 201 (asserted inside)
        assert hung.receipts == []  # no request waited for a receiver
        with session_scope(api.engine) as session:
            rows = session.exec(select(OutboxDelivery)).all()
        assert len(rows) == 2 * REPORTS
        assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
        # The worker gives up on each after its timeout, not the receiver's 60 s.
        started = time.perf_counter()
        policy = DeliveryPolicy(timeout_seconds=0.3, concurrency=8, batch=80)
        counts = deliver(api, policy)
        assert time.perf_counter() - started < 20
        # Intake goes on while deliveries fail.
        report(api, demo_points)
    assert counts == {"claimed": 80, "delivered": 0, "failed_attempts": 80}
    with session_scope(api.engine) as session:
        rows = session.exec(select(OutboxDelivery)).all()
        events = session.exec(select(OutboxEvent)).all()
    tried = [r for r in rows if r.attempts]
    assert len(tried) == 80
    assert {r.status for r in rows} == {"pending"}
    assert len(events) == REPORTS + 1
    assert any("Timeout" in (r.last_error or "") for r in tried)
    assert any("Connect" in (r.last_error or "") for r in tried)


def test_no_subscription_no_outbox_rows_and_rolled_back_changes_leave_none(
    api: Api, demo_points: Any
) -> None:
    report(api, demo_points)
    assert deliveries(api) == []
    subscribe(api, "http://127.0.0.1:9/hook")
    case_id = report(api, demo_points)
    res = api.post("dispatcher", f"/v1/cases/{case_id}/dispatch", {})  # not registered: 409
    assert res.status_code == 409
    assert [e.type for _, e in deliveries(api)] == ["case.reported"]


def test_metrics_show_deliveries_by_status_and_the_lag_of_the_oldest_due(
    api: Api, demo_points: Any
) -> None:
    def scrape() -> dict[str, float]:
        text = api.client.get("/metrics").text
        return {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith("gridgov_outbox_")
        }

    assert scrape()["gridgov_outbox_lag_seconds"] == 0.0
    subscribe(api, refused_url())
    report(api, demo_points)
    api.clock.advance(seconds=30)
    got = scrape()
    assert got['gridgov_outbox_deliveries{status="pending"}'] == 1.0
    assert got['gridgov_outbox_deliveries{status="delivered"}'] == 0.0
    assert got["gridgov_outbox_lag_seconds"] == 30.0
    deliver(api, DeliveryPolicy(timeout_seconds=2.0, concurrency=1))  # refused: retried later
    assert scrape()["gridgov_outbox_lag_seconds"] == 0.0
