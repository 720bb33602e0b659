"""The outbox: each case event some subscription takes is stored in the transaction of the change.

`install()` adds a hook to `dispatch.changes` that runs just before the commit, before the history
rows are linked (so not while the audit head is locked; see `dispatch.changes`): it reads the
active subscriptions, routes each event (`routes_to`) and writes one `OutboxEvent` plus an
`OutboxDelivery` per subscription (a commit with many events, a sweep's batch, in three
statements on PostgreSQL). A rolled-back change leaves nothing behind; a committed one cannot
lose its deliveries. The network is never touched here (see `notify.delivery`).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    Row,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy import case as when
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool
from sqlmodel import Session

from core import bulk
from core.db import UTCDateTime
from core.settings import get_settings
from dispatch.changes import CaseEvent, EventType, add_event_hook
from dispatch.models import Case
from notify.models import (
    DeliveryStatus,
    OutboxDelivery,
    OutboxEvent,
    SubscriptionKind,
    WebhookSubscription,
)

# Case columns a receiver does not get: the geometry (lat/lng say it) and the audit chain.
_LEFT_OUT = frozenset({"location", "history_seq", "history_head"})
CASE_COLUMNS = Case.__table__.columns  # type: ignore[attr-defined]
EVENT_TABLE = OutboxEvent.__table__  # type: ignore[attr-defined]
DELIVERY_TABLE = OutboxDelivery.__table__  # type: ignore[attr-defined]
SUBSCRIPTION_TABLE = WebhookSubscription.__table__  # type: ignore[attr-defined]
DATETIME_FIELDS = frozenset(c.name for c in CASE_COLUMNS if isinstance(c.type, UTCDateTime))


_SNAPSHOT_COLUMNS = tuple(c.name for c in CASE_COLUMNS if c.name not in _LEFT_OUT)


def snapshot(case: Case) -> dict[str, Any]:
    """The case's columns as JSON values (datetimes ISO 8601), to rebuild it when sending.

    Values come from the instance's dict when there (a new case, or a loaded one: one Python
    call per column less than the instrumented attribute), else through the attribute."""
    state = case.__dict__
    out: dict[str, Any] = {}
    for name in _SNAPSHOT_COLUMNS:
        value = state[name] if name in state else getattr(case, name)
        out[name] = value.isoformat() if isinstance(value, date) else value  # datetimes too
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


# How a subscription of another kind than `webhook` decides, after `routes_to`, whether it takes
# an event (e.g. WeChat: a resident reported the case); registered by the app, since notify
# imports no channel. It runs in the committing transaction, with autoflush off.
Router = Callable[[Session, CaseEvent, Case], bool]
_ROUTERS: dict[str, Router] = {}


def register_router(kind: str, router: Router) -> None:
    _ROUTERS[kind] = router


def _takes(session: Session, sub: Any, event: CaseEvent, case: Case) -> bool:
    if not routes_to(sub, event, case):
        return False
    kind = getattr(sub, "kind", SubscriptionKind.WEBHOOK)
    if kind == SubscriptionKind.WEBHOOK:
        return True
    router = _ROUTERS.get(kind)
    if router is None:  # not configured in this process: nothing for it
        return False
    with session.no_autoflush:
        return router(session, event, case)


_ACTIVE_SUBSCRIPTIONS = select(SUBSCRIPTION_TABLE).where(SUBSCRIPTION_TABLE.c.active.is_(True))
# Moves with every change of the active set: adding raises the largest id, removing (which only
# ever deactivates) lowers the count of active ones.
_REVISION = select(
    func.coalesce(func.max(SUBSCRIPTION_TABLE.c.id), 0),
    func.coalesce(func.sum(when((SUBSCRIPTION_TABLE.c.active.is_(True), 1), else_=0)), 0),
)


class SubscriptionCache:
    """A process's copy of the active subscriptions of one database.

    The hook runs in every committing change (every report), so it must not read the table each
    time. At most every `refresh_seconds` it reads one revision row in the committing
    transaction and reloads the rows when it moved; this process's own `webhooks add/remove`
    drop the copy on commit. A subscription added by another process therefore starts taking
    events within `refresh_seconds` (GRIDGOV_GRID_REFRESH_SECONDS); a removed one may get
    deliveries for as long, which the worker fails unsent (`notify.delivery.claim`).
    """

    def __init__(self, refresh_seconds: float, monotonic: Callable[[], float] = time.monotonic):
        self.refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._rows: Sequence[Row[Any]] = ()
        self._revision: tuple[int, int] | None = None
        self._checked_at = float("-inf")

    def active(self, connection: Connection) -> Sequence[Row[Any]]:
        now = self._monotonic()
        with self._lock:
            if self._revision is not None and now - self._checked_at < self.refresh_seconds:
                return self._rows
        top, count = connection.execute(_REVISION).one()
        revision = (int(top), int(count))
        with self._lock:
            if revision != self._revision:
                self._rows = connection.execute(_ACTIVE_SUBSCRIPTIONS).all()
                self._revision = revision
            self._checked_at = now
            return self._rows

    def invalidate(self) -> None:
        with self._lock:
            self._revision = None
            self._checked_at = float("-inf")


# One cache per connection pool (a database of this process), gone with its engine. A pool not
# configured by a runtime checks the revision on every commit.
_CACHES: weakref.WeakKeyDictionary[Pool, SubscriptionCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache_of(pool: Pool) -> SubscriptionCache:
    with _CACHES_LOCK:
        cache = _CACHES.get(pool)
        if cache is None:
            cache = _CACHES[pool] = SubscriptionCache(0.0)
        return cache


def configure(engine: Engine, *, refresh_seconds: float) -> None:
    """How long this process may go without re-checking the subscriptions of `engine`."""
    _cache_of(engine.pool).refresh_seconds = refresh_seconds


def subscriptions_changed(session: Session) -> None:
    """Called by whoever changes subscriptions in `session`: this process sees it at commit."""
    cache = _cache_of(session.connection().engine.pool)
    event.listen(session, "after_commit", lambda _s: cache.invalidate(), once=True)


def store(session: Session, events: list[CaseEvent]) -> None:
    """The hook: write the outbox rows of `events` (inside the committing transaction)."""
    # Core statements on the transaction's connection: no unit of work for rows never read here.
    connection = session.connection()
    subs = _cache_of(connection.engine.pool).active(connection)
    if not subs:
        return
    horizon = timedelta(seconds=get_settings().outbox_retry_horizon_seconds)
    routed: list[tuple[CaseEvent, Case, list[int]]] = []
    for case_event in events:
        case = case_event.case or session.get(Case, case_event.case_id)
        if case is None:
            continue
        takers = [s.id for s in subs if _takes(session, s, case_event, case)]
        if takers:
            routed.append((case_event, case, takers))
    if len(routed) > 1 and connection.dialect.name == "postgresql":
        _write_many(connection, routed, horizon)  # a sweep's batch: three statements in all
        return
    for case_event, case, takers in routed:
        _write(connection, case_event, case, takers, horizon)


def _param(table: Any, column: str, name: str | None = None) -> Any:
    return bindparam(name or column, type_=table.c[column].type)


# Built once: the event's insert, and the deliveries' rows (on PostgreSQL in the same statement,
# the event's insert as a CTE, one row per subscription id of the array `subscription_ids`).
_DELIVERY_VALUES = ("case_id", "status", "attempts", "next_attempt_at", "created_at", "retry_until")
_NEW_EVENT = insert(EVENT_TABLE).values(
    {
        c: _param(EVENT_TABLE, c)
        for c in ("type", "case_id", "occurred_at", "case_data", "escalation")
    }
)
_MADE = _NEW_EVENT.returning(EVENT_TABLE.c.id).cte("made")
_EVENT_WITH_DELIVERIES = insert(DELIVERY_TABLE).from_select(
    ["event_id", "subscription_id", *_DELIVERY_VALUES],
    select(
        _MADE.c.id,
        func.unnest(bindparam("subscription_ids", type_=ARRAY(Integer))),
        *(_param(DELIVERY_TABLE, c, f"d_{c}") for c in _DELIVERY_VALUES),
    ),
    include_defaults=False,
)


def _event_row(case_event: CaseEvent, case_data: dict[str, Any]) -> dict[str, Any]:
    """The outbox row of an event (its id aside)."""
    escalation = case_event.data.get("escalation")
    return {
        "type": case_event.type.value,
        "case_id": case_event.case_id,
        "occurred_at": case_event.occurred_at,
        "case_data": case_data,
        "escalation": escalation if case_event.type is EventType.ESCALATED else None,
    }


def _delivery_row(case_event: CaseEvent, horizon: timedelta) -> dict[str, Any]:
    """What each delivery of an event starts as (its event and subscription aside)."""
    at = case_event.occurred_at
    return {
        "case_id": case_event.case_id,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
        "retry_until": at + horizon,
    }


def _write(
    connection: Connection,
    case_event: CaseEvent,
    case: Case,
    subscription_ids: list[int],
    horizon: timedelta,
) -> None:
    """One event row and its deliveries: one statement on PostgreSQL, two elsewhere."""
    event = _event_row(case_event, snapshot(case))
    delivery = _delivery_row(case_event, horizon)
    if connection.dialect.name == "postgresql":
        connection.execute(
            _EVENT_WITH_DELIVERIES,
            {
                **event,
                "subscription_ids": subscription_ids,
                **{f"d_{k}": v for k, v in delivery.items()},
            },
        )
        return
    event_id = connection.execute(_NEW_EVENT.returning(EVENT_TABLE.c.id), event).scalar_one()
    connection.execute(
        insert(DELIVERY_TABLE),
        [{"event_id": event_id, "subscription_id": s, **delivery} for s in subscription_ids],
    )


# Ids for the events of one commit, taken in order (a subscription gets a case's events in
# event id order), so the events and their deliveries are written as two sets.
_EVENT_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('outbox_event', 'id')) FROM generate_series(1, :n)"
)
_EVENT_COLUMNS = ("id", "type", "case_id", "occurred_at", "case_data", "escalation")
_DELIVERY_COLUMNS = ("event_id", "subscription_id", *_DELIVERY_VALUES)


def _write_many(
    connection: Connection,
    routed: list[tuple[CaseEvent, Case, list[int]]],
    horizon: timedelta,
) -> None:
    """Many events and their deliveries (PostgreSQL): three statements, however many there are.
    The events of one case in one commit share its snapshot, taken once."""
    ids = sorted(connection.execute(_EVENT_IDS, {"n": len(routed)}).scalars())
    snapshots: dict[int, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for event_id, (case_event, case, takers) in zip(ids, routed, strict=True):
        data = snapshots.get(id(case))
        if data is None:
            data = snapshots[id(case)] = snapshot(case)
        events.append({"id": event_id, **_event_row(case_event, data)})
        delivery = _delivery_row(case_event, horizon)
        deliveries += (
            {"event_id": event_id, "subscription_id": subscription_id, **delivery}
            for subscription_id in takers
        )
    connection.execute(
        bulk.insert_rows(EVENT_TABLE, _EVENT_COLUMNS), bulk.rows_param(events, _EVENT_COLUMNS)
    )
    connection.execute(
        bulk.insert_rows(DELIVERY_TABLE, _DELIVERY_COLUMNS),
        bulk.rows_param(deliveries, _DELIVERY_COLUMNS),
    )


def store_warning(
    session: Session,
    *,
    event_type: str,
    warning_id: int,
    area_code: str,
    warning: dict[str, Any],
    occurred_at: datetime,
) -> int:
    """An early warning's event (`warning.raised` / `warning.updated`) into the same outbox, in
    the caller's transaction: to the webhook subscriptions of everything and of an area holding
    the warning's grid (not to a department's: a warning has no unit yet). Deliveries of one
    warning go out in order (ordering key: minus its id). Returns the number of deliveries."""
    connection = session.connection()
    subs = _cache_of(connection.engine.pool).active(connection)
    takers = [
        s.id
        for s in subs
        if getattr(s, "kind", SubscriptionKind.WEBHOOK) == SubscriptionKind.WEBHOOK
        and s.department_code is None
        and (s.area_code is None or area_code.startswith(s.area_code))
        and (s.event_types is None or event_type in s.event_types)
    ]
    if not takers:
        return 0
    horizon = timedelta(seconds=get_settings().outbox_retry_horizon_seconds)
    event_id = connection.execute(
        insert(EVENT_TABLE)
        .values(
            type=event_type,
            case_id=-warning_id,
            occurred_at=occurred_at,
            case_data={},
            escalation=None,
            warning_data=warning,
        )
        .returning(EVENT_TABLE.c.id)
    ).scalar_one()
    at = occurred_at
    connection.execute(
        insert(DELIVERY_TABLE),
        [
            {
                "event_id": event_id,
                "subscription_id": s,
                "case_id": -warning_id,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": at,
                "created_at": at,
                "retry_until": at + horizon,
            }
            for s in takers
        ],
    )
    return len(takers)


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Hook the outbox into every change's transaction (once per process)."""
    global _installed
    with _install_lock:
        if not _installed:
            add_event_hook(store)
            _installed = True
