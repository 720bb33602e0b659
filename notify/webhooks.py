"""Managing subscriptions and the outbox: add/list/remove webhooks, list and re-send deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from core.errors import (
    DeliveryNotFound,
    InvalidWebhookUrl,
    UnknownDepartment,
    UnknownEventType,
    UnknownWebhookArea,
    WeakWebhookSecret,
    WebhookNotFound,
)
from core.settings import Settings
from dispatch.changes import EventType
from dispatch.models import Department
from grid.models import Area
from notify import outbox
from notify.delivery import DeliveryPolicy
from notify.models import (
    DeliveryStatus,
    OutboxDelivery,
    OutboxEvent,
    SubscriptionKind,
    WebhookSubscription,
)

MIN_SECRET_CHARS = 16
# Case events, and the early-warning events (`warning.raised`, `warning.updated`: the warning
# instead of a case), which go to subscriptions of everything and of an area holding them.
WARNING_EVENT_TYPES = frozenset({"warning.raised", "warning.updated"})
EVENT_TYPES = frozenset(t.value for t in EventType) | WARNING_EVENT_TYPES


def policy_from(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        retry_base_seconds=settings.outbox_retry_base_seconds,
        lease_seconds=settings.outbox_lease_seconds,
        timeout_seconds=settings.outbox_timeout_seconds,
        batch=settings.outbox_batch,
        concurrency=settings.outbox_concurrency,
    )


def add(
    session: Session,
    *,
    url: str,
    secret: str,
    department_code: str | None,
    area_code: str | None,
    event_types: list[str] | None,
    now: datetime,
) -> WebhookSubscription:
    """A new active subscription; receivers on private and loopback addresses are allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise InvalidWebhookUrl(url=url)
    if len(secret) < MIN_SECRET_CHARS or len(secret) > 200:
        raise WeakWebhookSecret(min_chars=MIN_SECRET_CHARS)
    if (
        department_code is not None
        and session.exec(select(Department.id).where(Department.code == department_code)).first()
        is None
    ):
        raise UnknownDepartment(department=department_code)
    if (
        area_code is not None
        and session.exec(select(Area.id).where(Area.code == area_code)).first() is None
    ):
        raise UnknownWebhookArea(area=area_code)
    if event_types is not None:
        for event_type in event_types:
            if event_type not in EVENT_TYPES:
                raise UnknownEventType(event_type=event_type)
        event_types = sorted(set(event_types))
    sub = WebhookSubscription(
        url=url,
        secret=secret,
        department_code=department_code,
        area_code=area_code,
        event_types=event_types,
        created_at=now,
    )
    session.add(sub)
    session.flush()
    outbox.subscriptions_changed(session)
    return sub


def subscriptions(session: Session) -> list[WebhookSubscription]:
    return list(
        session.exec(
            select(WebhookSubscription)
            .where(
                col(WebhookSubscription.active),
                col(WebhookSubscription.kind) == SubscriptionKind.WEBHOOK,
            )
            .order_by(col(WebhookSubscription.id))
        )
    )


def remove(session: Session, subscription_id: int) -> None:
    """Deactivate it (its past deliveries stay listed); its pending ones are not sent."""
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None or not sub.active or sub.kind != SubscriptionKind.WEBHOOK:
        raise WebhookNotFound(webhook_id=subscription_id)
    sub.active = False
    for delivery in session.exec(
        select(OutboxDelivery).where(
            OutboxDelivery.subscription_id == subscription_id,
            OutboxDelivery.status == DeliveryStatus.PENDING.value,
        )
    ):
        delivery.status = DeliveryStatus.FAILED.value
        delivery.last_error = "subscription removed"
    session.add(sub)
    outbox.subscriptions_changed(session)


def deliveries(session: Session, *, failed_only: bool, limit: int = 200) -> list[dict[str, Any]]:
    """Newest first: id, event id and type, case, subscription, status, attempts, error."""
    query = (
        select(OutboxDelivery, OutboxEvent)
        .join(OutboxEvent, col(OutboxEvent.id) == col(OutboxDelivery.event_id))
        .order_by(col(OutboxDelivery.id).desc())
        .limit(limit)
    )
    if failed_only:
        query = query.where(OutboxDelivery.status == DeliveryStatus.FAILED.value)
    return [
        {
            "id": d.id,
            "event_id": e.id,
            "type": e.type,
            "case_id": d.case_id,
            "subscription_id": d.subscription_id,
            "status": d.status,
            "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at.isoformat(),
            "last_error": d.last_error,
        }
        for d, e in session.exec(query).all()
    ]


def retry(session: Session, delivery_id: int, *, now: datetime, horizon_seconds: float) -> None:
    """Send it again now (failed, pending or even delivered: receivers drop repeats by id),
    with a fresh retry horizon."""
    delivery = session.get(OutboxDelivery, delivery_id)
    if delivery is None:
        raise DeliveryNotFound(delivery_id=delivery_id)
    sub = session.get(WebhookSubscription, delivery.subscription_id)
    if sub is None or not sub.active:  # removed: nobody to send it to
        raise WebhookNotFound(webhook_id=delivery.subscription_id)
    delivery.status = DeliveryStatus.PENDING.value
    delivery.next_attempt_at = now
    delivery.leased_until = None
    delivery.lease_token = None
    delivery.retry_until = now + timedelta(seconds=horizon_seconds)
    session.add(delivery)
