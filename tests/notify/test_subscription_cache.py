"""The active subscriptions are read once per refresh, not in every committing change: what
another process adds or removes shows within the refresh, this process's own changes at once,
and deliveries written for a removed subscription by a lagging copy are never sent."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from core.db import make_engine, session_scope
from notify import outbox, webhooks
from notify.outbox import SubscriptionCache
from tests.conftest import Api
from tests.notify.helpers import deliver, deliveries, report, subscribe
from tests.notify.receiver import receiver


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _ids(cache: SubscriptionCache, engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return [row.id for row in cache.active(connection)]


def test_another_process_changes_show_after_the_refresh_and_not_before(api: Api) -> None:
    ticks = Ticks()
    cache = SubscriptionCache(5.0, monotonic=ticks)
    other = make_engine(str(api.engine.url.render_as_string(hide_password=False)))
    try:
        assert _ids(cache, api.engine) == []
        first = subscribe_with(other, api, "http://127.0.0.1:9/a")
        ticks.now = 4.9
        assert _ids(cache, api.engine) == []  # the copy is still fresh
        ticks.now = 5.0
        assert _ids(cache, api.engine) == [first]
        second = subscribe_with(other, api, "http://127.0.0.1:9/b")
        with session_scope(other) as session:
            webhooks.remove(session, first)
        ticks.now = 10.0
        assert _ids(cache, api.engine) == [second]
        cache.invalidate()
        assert _ids(cache, api.engine) == [second]
    finally:
        other.dispose()


def subscribe_with(engine: Engine, api: Api, url: str) -> int:
    with session_scope(engine) as session:
        sub = webhooks.add(
            session,
            url=url,
            secret="another-process-secret-0123",
            department_code=None,
            area_code=None,
            event_types=None,
            now=api.clock.now,
        )
        assert sub.id is not None
        return sub.id


def test_this_process_sees_its_own_add_and_remove_at_once(api: Api, demo_points: Any) -> None:
    outbox.configure(api.engine, refresh_seconds=3600.0)
    report(api, demo_points)  # the copy now holds "no subscriptions" for an hour
    assert deliveries(api) == []
    with receiver() as hook:
        sub_id = subscribe(api, hook.url)
        case_id = report(api, demo_points)
        assert [(d.subscription_id, e.case_id) for d, e in deliveries(api)] == [(sub_id, case_id)]
        with session_scope(api.engine) as session:
            webhooks.remove(session, sub_id)
        report(api, demo_points)
        assert len(deliveries(api)) == 1


def test_a_lagging_copy_never_sends_to_a_removed_subscription(api: Api, demo_points: Any) -> None:
    outbox.configure(api.engine, refresh_seconds=3600.0)
    other = make_engine(str(api.engine.url.render_as_string(hide_password=False)))
    try:
        with receiver() as hook:
            sub_id = subscribe(api, hook.url)
            report(api, demo_points)
            with session_scope(other) as session:  # another process removes it
                webhooks.remove(session, sub_id)
            report(api, demo_points)  # this process's copy still has it
            rows = deliveries(api)
            assert [d.status for d, _ in rows] == ["failed", "pending"]
            assert deliver(api)["claimed"] == 0
            assert [(d.status, d.last_error) for d, _ in deliveries(api)] == [
                ("failed", "subscription removed"),
                ("failed", "subscription removed"),
            ]
            assert hook.receipts == []
    finally:
        other.dispose()
