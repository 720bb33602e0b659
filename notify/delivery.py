"""The delivery worker: claim due deliveries, commit, POST them (no transaction open), record.

A claim is a lease (`leased_until`, `lease_token`) taken in one short transaction with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has one writer), so workers in several processes
never take the same delivery, and the claims of a killed worker expire to the next. A result is
recorded only under the worker's own token: at-least-once, with the event id as the stable
delivery id. Per subscription, a case's deliveries go in order: none is claimed while an
earlier one of that case to that subscription is still pending.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, exists, or_, select, true, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from core.db import session_scope
from core.models import Role
from core.security import SYSTEM_ACTOR, Actor
from dispatch.models import Case
from dispatch.names import case_names
from dispatch.schemas import case_out
from notify.models import (
    DeliveryStatus,
    OutboxDelivery,
    OutboxEvent,
    SubscriptionKind,
    WebhookSubscription,
)
from notify.outbox import DATETIME_FIELDS
from taxonomy.catalogue import Catalogue

RETRY_CAP_SECONDS = 3600.0
JITTER = 0.25  # a retry waits up to this fraction longer than its doubling step


@dataclass(frozen=True)
class DeliveryPolicy:
    retry_base_seconds: float = 10.0
    lease_seconds: float = 120.0
    timeout_seconds: float = 10.0
    batch: int = 50
    concurrency: int = 8


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    subscription_id: int
    event_id: int
    event_type: str
    url: str
    secret: str
    body: bytes
    attempts: int
    retry_until: datetime
    token: str
    kind: str = SubscriptionKind.WEBHOOK


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None


# How a delivery of another kind than `webhook` is sent (e.g. WeChat template messages):
# (engine, the claimed delivery, now) → its outcome; registered by the app, since notify
# imports no channel. It runs with no transaction open, like a webhook POST.
Sender = Callable[[Any, Claimed, datetime], Outcome]
_SENDERS: dict[str, Sender] = {}


def register_sender(kind: str, sender: Sender) -> None:
    _SENDERS[kind] = sender


def _send(engine: Any, client: httpx.Client, item: Claimed, *, now: datetime) -> Outcome:
    """A webhook's POST, or the registered sender of the delivery's kind (a failed attempt
    when none is registered in this process, or it raises)."""
    if item.kind == SubscriptionKind.WEBHOOK:
        return send(client, item, now=now)
    sender = _SENDERS.get(item.kind)
    if sender is None:
        return Outcome(False, None, f"no sender for {item.kind} in this process")
    try:
        return sender(engine, item, now)
    except Exception as exc:  # a failed attempt, retried with the outbox's backoff
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])


@dataclass
class Breaker:
    """A worker's memory of receivers that are down (a circuit breaker per subscription).

    When every attempt of a batch to a subscription fails, the worker leaves its deliveries
    alone for the retry step of that many failures in a row (base, 2×base … capped at an hour),
    then tries again; one success closes it. A dead receiver then costs a batch of attempts per
    step, not one per delivery and tick, and never the worker's time for the other receivers.
    Each worker process has its own; the deliveries' own retry schedule is unchanged.
    """

    base_seconds: float
    failures: dict[int, int] = field(default_factory=dict)
    open_until: dict[int, datetime] = field(default_factory=dict)

    def skipped(self, now: datetime) -> list[int]:
        """The subscriptions not to try now."""
        return sorted(sub for sub, until in self.open_until.items() if until > now)

    def observe(self, results: list[tuple[Claimed, Outcome]], *, now: datetime) -> None:
        answered: dict[int, bool] = {}
        for item, outcome in results:
            answered[item.subscription_id] = answered.get(item.subscription_id, False) or (
                outcome.ok
            )
        for sub, ok in answered.items():
            if ok:
                self.failures.pop(sub, None)
                self.open_until.pop(sub, None)
                continue
            failures = self.failures.get(sub, 0) + 1
            self.failures[sub] = failures
            step = min(RETRY_CAP_SECONDS, self.base_seconds * 2 ** (failures - 1))
            self.open_until[sub] = now + timedelta(seconds=step)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=` + HMAC-SHA256(secret, "TIMESTAMP." + body), as the contract says."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def retry_delay(attempts: int, *, base: float, rng: random.Random) -> float:
    """Seconds before the next try after `attempts` failed ones: base, 2×base, 4×base … with
    up to 25 % jitter, never more than an hour."""
    step = min(RETRY_CAP_SECONDS, base * 2 ** max(attempts - 1, 0))
    return float(min(RETRY_CAP_SECONDS, step * (1 + JITTER * rng.random())))


def _case_from(data: dict[str, Any]) -> Case:
    values: dict[str, Any] = {
        k: (datetime.fromisoformat(v) if k in DATETIME_FIELDS and isinstance(v, str) else v)
        for k, v in data.items()
    }
    return Case(**values)


def body_of(
    session: Session, event: OutboxEvent, sub: WebhookSubscription, catalogue: Catalogue
) -> bytes:
    """The POST body: the event and its case as it was then (without history), seen as the
    subscriber's unit sees it (a department's: personal data masked). An early warning's
    event carries the warning instead."""
    if event.warning_data is not None:
        return json.dumps(
            {
                "id": event.id,
                "type": event.type,
                "occurred_at": event.occurred_at.isoformat(),
                "warning": event.warning_data,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
    case = _case_from(event.case_data)
    viewer = (
        Actor(
            id=None, username="webhook", role=Role.DEPARTMENT, department_code=sub.department_code
        )
        if sub.department_code is not None
        else SYSTEM_ACTOR
    )
    names = case_names(session, [case], catalogue=catalogue)
    payload: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "case": case_out(case, viewer=viewer, names=names).model_dump(
            mode="json", exclude={"history"}
        ),
    }
    if event.escalation is not None:
        payload["escalation"] = event.escalation
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def claim(
    engine: Any,
    *,
    now: datetime,
    policy: DeliveryPolicy,
    catalogue: Catalogue,
    skip: Sequence[int] = (),
) -> list[Claimed]:
    """Lease up to `policy.batch` due deliveries (oldest first, one per case and subscription;
    none of the subscriptions in `skip`) and build their bodies; the transaction commits before
    anything is sent."""
    d = OutboxDelivery.__table__  # type: ignore[attr-defined]
    e = aliased(d)
    earlier = exists().where(
        and_(
            e.c.subscription_id == d.c.subscription_id,
            e.c.case_id == d.c.case_id,
            e.c.id < d.c.id,
            e.c.status == DeliveryStatus.PENDING.value,
        )
    )
    due = (
        select(d.c.id)
        .where(
            d.c.status == DeliveryStatus.PENDING.value,
            d.c.next_attempt_at <= now,
            or_(d.c.leased_until.is_(None), d.c.leased_until <= now),
            ~earlier,
            d.c.subscription_id.not_in(skip) if skip else true(),
        )
        .order_by(d.c.id)
        .limit(policy.batch)
        .with_for_update(skip_locked=True)
    )
    token = secrets.token_hex(16)
    out: list[Claimed] = []
    with session_scope(engine) as session:
        _fail_removed(session, d)
        if skip:
            _fail_expired(session, d, skip, now)
        session.execute(
            update(d)
            .where(d.c.id.in_(due.scalar_subquery()))
            .values(leased_until=now + timedelta(seconds=policy.lease_seconds), lease_token=token)
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(OutboxDelivery, OutboxEvent, WebhookSubscription)
            .join(OutboxEvent, OutboxEvent.id == OutboxDelivery.event_id)  # type: ignore[arg-type]
            .join(
                WebhookSubscription,
                WebhookSubscription.id == OutboxDelivery.subscription_id,  # type: ignore[arg-type]
            )
            .where(OutboxDelivery.lease_token == token)  # type: ignore[arg-type]
            .order_by(OutboxDelivery.id)  # type: ignore[arg-type]
        ).all()
        for delivery, event, sub in rows:
            assert delivery.id is not None
            assert event.id is not None
            out.append(
                Claimed(
                    delivery_id=delivery.id,
                    subscription_id=delivery.subscription_id,
                    event_id=event.id,
                    event_type=event.type,
                    url=sub.url,
                    secret=sub.secret,
                    body=(
                        body_of(session, event, sub, catalogue)
                        if sub.kind == SubscriptionKind.WEBHOOK
                        else b""
                    ),
                    attempts=delivery.attempts,
                    retry_until=delivery.retry_until,
                    token=token,
                    kind=sub.kind,
                )
            )
    return out


def _fail_removed(session: Session, d: Any) -> None:
    """Deliveries written for a subscription after it was removed (another process's copy of
    the subscriptions lags by up to GRIDGOV_GRID_REFRESH_SECONDS): failed unsent, as `remove`
    does with those it finds."""
    s = WebhookSubscription.__table__  # type: ignore[attr-defined]
    session.execute(
        update(d)
        .where(
            d.c.status == DeliveryStatus.PENDING.value,
            d.c.subscription_id.in_(select(s.c.id).where(s.c.active.is_(False))),
        )
        .values(status=DeliveryStatus.FAILED.value, last_error="subscription removed")
        .execution_options(synchronize_session=False)
    )


def _fail_expired(session: Session, d: Any, subscriptions: Sequence[int], now: datetime) -> None:
    """Deliveries past their retry horizon whose receiver is still down: failed without one
    more attempt each (the breaker would otherwise let them out one batch per hour)."""
    session.execute(
        update(d)
        .where(
            d.c.status == DeliveryStatus.PENDING.value,
            d.c.subscription_id.in_(subscriptions),
            d.c.retry_until <= now,
        )
        .values(status=DeliveryStatus.FAILED.value, last_error="receiver down past the horizon")
        .execution_options(synchronize_session=False)
    )


def send(client: httpx.Client, item: Claimed, *, now: datetime) -> Outcome:
    """One POST; any answer but 2xx, and any network trouble, is a failed attempt."""
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Gridgov-Event": item.event_type,
        "X-Gridgov-Delivery": str(item.event_id),
        "X-Gridgov-Timestamp": str(timestamp),
        "X-Gridgov-Signature": sign(item.secret, timestamp, item.body),
    }
    try:
        response = client.post(item.url, content=item.body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, None)
    return Outcome(False, response.status_code, f"HTTP {response.status_code}")


def record(
    engine: Any,
    results: list[tuple[Claimed, Outcome]],
    *,
    now: datetime,
    policy: DeliveryPolicy,
    rng: random.Random,
) -> None:
    """Store the attempts' results in one transaction, each only if its claim is still this
    worker's (else another worker has sent it again since: at-least-once)."""
    d = OutboxDelivery.__table__  # type: ignore[attr-defined]
    with session_scope(engine) as session:
        for item, outcome in results:
            attempts = item.attempts + 1
            values: dict[str, Any] = {
                "attempts": attempts,
                "leased_until": None,
                "lease_token": None,
                "last_status_code": outcome.status_code,
                "last_error": outcome.error,
            }
            if outcome.ok:
                values.update(status=DeliveryStatus.DELIVERED.value, delivered_at=now)
            elif now >= item.retry_until:
                values.update(status=DeliveryStatus.FAILED.value)
            else:
                delay = retry_delay(attempts, base=policy.retry_base_seconds, rng=rng)
                values.update(next_attempt_at=now + timedelta(seconds=delay))
            session.execute(
                update(d)
                .where(d.c.id == item.delivery_id, d.c.lease_token == item.token)
                .values(**values)
                .execution_options(synchronize_session=False)
            )


def deliver_once(
    engine: Any,
    *,
    now: datetime,
    policy: DeliveryPolicy,
    catalogue: Catalogue,
    client: httpx.Client,
    rng: random.Random | None = None,
    breaker: Breaker | None = None,
) -> dict[str, int]:
    """One batch: claim (commit), send (several at once, no transaction open), record."""
    rng = rng or random.Random()
    skip = breaker.skipped(now) if breaker is not None else []
    items = claim(engine, now=now, policy=policy, catalogue=catalogue, skip=skip)
    outcomes: list[Outcome]
    if policy.concurrency > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=min(policy.concurrency, len(items))) as pool:
            outcomes = list(pool.map(lambda item: _send(engine, client, item, now=now), items))
    else:
        outcomes = [_send(engine, client, item, now=now) for item in items]
    if items:
        results = list(zip(items, outcomes, strict=True))
        record(engine, results, now=now, policy=policy, rng=rng)
        if breaker is not None:
            breaker.observe(results, now=now)
    delivered = sum(1 for o in outcomes if o.ok)
    return {
        "claimed": len(items),
        "delivered": delivered,
        "failed_attempts": len(items) - delivered,
    }


def make_client(policy: DeliveryPolicy) -> httpx.Client:
    return httpx.Client(timeout=policy.timeout_seconds, follow_redirects=False, trust_env=False)


def drain(
    engine: Any,
    *,
    clock: Callable[[], datetime],
    policy: DeliveryPolicy,
    catalogue: Callable[[], Catalogue],
    client: httpx.Client,
    breaker: Breaker | None = None,
    max_batches: int = 1000,
) -> dict[str, int]:
    """Batches until one comes back short (nothing more due now): one tick of a worker."""
    totals = {"claimed": 0, "delivered": 0, "failed_attempts": 0}
    for _ in range(max_batches):
        counts = deliver_once(
            engine,
            now=clock(),
            policy=policy,
            catalogue=catalogue(),
            client=client,
            breaker=breaker,
        )
        for key, value in counts.items():
            totals[key] += value
        if counts["claimed"] < policy.batch:
            break
    return totals
