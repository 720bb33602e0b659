"""The outbox: each case event some subscription takes is stored in the transaction of the change.

`install()` adds a hook to `dispatch.changes` that runs just before the commit, after the history
rows are linked (queues flush in the order they were made): it reads the active subscriptions,
routes each event (`routes_to`) and writes one `OutboxEvent` plus a `OutboxDelivery` per
subscription. A rolled-back change leaves nothing behind; a committed one cannot lose its
deliveries. The network is never touched here (see `notify.delivery`).
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlmodel import Session

from core.db import UTCDateTime
from core.settings import get_settings
from dispatch.changes import CaseEvent, EventType, add_event_hook
from dispatch.models import Case
from notify.models import DeliveryStatus, OutboxDelivery, OutboxEvent, WebhookSubscription

# Case columns a receiver does not get: the geometry (lat/lng say it) and the audit chain.
_LEFT_OUT = frozenset({"location", "history_seq", "history_head"})
CASE_COLUMNS = Case.__table__.columns  # type: ignore[attr-defined]
EVENT_TABLE = OutboxEvent.__table__  # type: ignore[attr-defined]
DELIVERY_TABLE = OutboxDelivery.__table__  # type: ignore[attr-defined]
SUBSCRIPTION_TABLE = WebhookSubscription.__table__  # type: ignore[attr-defined]
DATETIME_FIELDS = frozenset(c.name for c in CASE_COLUMNS if isinstance(c.type, UTCDateTime))


def snapshot(case: Case) -> dict[str, Any]:
    """The case's columns as JSON values (datetimes ISO 8601), to rebuild it when sending."""
    out: dict[str, Any] = {}
    for column in CASE_COLUMNS:
        if column.name in _LEFT_OUT:
            continue
        value = getattr(case, column.name)
        out[column.name] = value.isoformat() if isinstance(value, datetime | date) else value
    return out


class Routed(Protocol):
    """What routing reads of a subscription (an ORM object or a row of its table)."""

    event_types: list[str] | None
    department_code: str | None
    area_code: str | None


def routes_to(sub: Routed, event: CaseEvent, case: Case) -> bool:
    """The contract's routing. A department's subscription: events of cases dispatched to it.
    An area's: events of cases inside it, except `case.escalated`, which goes to the area the
    escalation names (and to the department). Neither: everything. Both: both must hold."""
    if sub.event_types is not None and event.type.value not in sub.event_types:
        return False
    if sub.department_code is not None and (
        case.department_code != sub.department_code
        or (case.dispatched_at is None and event.type is not EventType.DISPATCHED)
    ):
        return False
    if sub.area_code is not None:
        if event.type is EventType.ESCALATED:
            escalation = event.data.get("escalation") or {}
            return bool(escalation.get("area_code") == sub.area_code)
        return case.grid_code.startswith(sub.area_code)
    return True


_ACTIVE_SUBSCRIPTIONS = select(SUBSCRIPTION_TABLE).where(SUBSCRIPTION_TABLE.c.active.is_(True))


def store(session: Session, events: list[CaseEvent]) -> None:
    """The hook: write the outbox rows of `events` (inside the committing transaction)."""
    horizon = timedelta(seconds=get_settings().outbox_retry_horizon_seconds)
    # Every commit of a change runs this: a statement built once, rows not ORM objects.
    connection = session.connection()  # Core inserts: no unit of work for rows never read here
    subs = connection.execute(_ACTIVE_SUBSCRIPTIONS).all()
    if not subs:
        return
    for event in events:
        case = session.get(Case, event.case_id)
        if case is None:
            continue
        takers = [s for s in subs if routes_to(s, event, case)]
        if not takers:
            continue
        escalation = event.data.get("escalation") if event.type is EventType.ESCALATED else None
        event_id = connection.execute(
            insert(EVENT_TABLE)
            .values(
                type=event.type.value,
                case_id=event.case_id,
                occurred_at=event.occurred_at,
                case_data=snapshot(case),
                escalation=escalation,
            )
            .returning(EVENT_TABLE.c.id)
        ).scalar_one()
        connection.execute(
            insert(DELIVERY_TABLE),
            [
                {
                    "event_id": event_id,
                    "subscription_id": sub.id,
                    "case_id": event.case_id,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": event.occurred_at,
                    "created_at": event.occurred_at,
                    "retry_until": event.occurred_at + horizon,
                }
                for sub in takers
            ],
        )


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Hook the outbox into every change's transaction (once per process)."""
    global _installed
    with _install_lock:
        if not _installed:
            add_event_hook(store)
            _installed = True
