"""A commit with many events (a sweep's batch): its outbox rows are the ones each event alone
would get, in event order, whichever way they are written (one set on PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dispatch.tasks import run_sweep
from tests.conftest import Api
from tests.notify.helpers import act, deliver, deliveries, report, subscribe
from tests.notify.receiver import receiver

CASES = 4
# Six hours after dispatch, not accepted: the 签收 stage's red card and the limit's, each telling
# the 村居.
PER_CASE = ["case.overdue", "case.escalated"] * 2


def test_a_sweeps_events_reach_each_subscription_once_in_order_with_their_case(
    api: Api, demo_points: Any
) -> None:
    with receiver() as hook:
        everything = subscribe(api, hook.url)
        escalations = subscribe(api, hook.url, events=["case.escalated"])
        ids = []
        for _ in range(CASES):
            case_id = report(api, demo_points)
            act(api, "dispatcher", case_id, "register")
            act(api, "dispatcher", case_id, "dispatch")
            ids.append(case_id)
        before = {e.id for _, e in deliveries(api)}
        api.clock.advance(hours=6)  # every case red: 红牌 and 村居 told
        runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
        swept = run_sweep(
            api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy
        )
        assert swept["checked"] == CASES
        rows = [(d, e) for d, e in deliveries(api) if e.id not in before]
        events = {e.id: e for _, e in rows}
        by_sub: dict[int, list[int]] = {}
        for d, e in rows:
            assert e.id is not None
            by_sub.setdefault(d.subscription_id, []).append(e.id)
            assert (d.status, d.attempts, d.case_id) == ("pending", 0, e.case_id)
            assert d.next_attempt_at == d.created_at == e.occurred_at == api.clock.now
            assert d.retry_until - d.created_at == timedelta(hours=24)
        # Every case's card and escalation, to the subscription of everything, in event order.
        assert by_sub[everything] == sorted(events)
        told = [(events[i].case_id, events[i].type) for i in by_sub[everything]]
        for case_id in ids:  # a case's own events, each card before its escalation
            assert [t for c, t in told if c == case_id] == PER_CASE
        assert len(told) == len(PER_CASE) * CASES
        assert [events[i].type for i in by_sub[escalations]] == ["case.escalated"] * 2 * CASES
        for event in events.values():
            state = api.get("dispatcher", f"/v1/cases/{event.case_id}").json()
            assert event.case_data["id"] == event.case_id
            assert event.case_data["version"] == state["version"]
            # The case as the commit left it, in every event of it.
            for name in ("status", "warning_level", "escalation_level"):
                assert event.case_data[name] == state[name], name
            assert event.case_data["warning_level"] == "red"
            if event.type == "case.escalated":
                assert event.escalation is not None
                assert event.escalation["level"] >= 1
            else:
                assert not event.escalation
        for _ in range(20):  # a case's deliveries go one after another
            if deliver(api)["claimed"] == 0:
                break
    assert {d.status for d, _ in deliveries(api)} == {"delivered"}
    bodies = [r.json for r in hook.accepted() if r.json["id"] in events]
    assert len(bodies) == (len(PER_CASE) + 2) * CASES
    assert {b["case"]["id"] for b in bodies} == set(ids)
