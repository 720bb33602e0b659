"""Tables of notifications: webhook subscriptions, the outbox's events and their deliveries.

An event row is written once per case event that at least one subscription takes, in the
transaction of the change; a delivery row per (event, subscription). The event's id is the
delivery id a receiver sees (`X-Gridgov-Delivery`), the same on every retry.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (or leased by a worker until leased_until)
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # no 2xx within the retry horizon; `gridgov outbox retry` sends it again


class SubscriptionKind(StrEnum):
    WEBHOOK = "webhook"
    WECHAT = "wechat"


class WebhookSubscription(SQLModel, table=True):
    __tablename__ = "webhook_subscription"
    __table_args__ = (
        # At most one subscription of each kind but `webhook` (processes starting together).
        Index(
            "uq_webhook_subscription_kind",
            "kind",
            unique=True,
            sqlite_where=text("kind != 'webhook'"),
            postgresql_where=text("kind != 'webhook'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=200)
    # None: every department's cases (and likewise for the area).
    department_code: str | None = Field(default=None, max_length=16)
    area_code: str | None = Field(default=None, max_length=15)
    # None: every event type.
    event_types: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # `webhook`: a signed POST to `url`. Another kind (`wechat`: the residents' template
    # messages, its one row made by the app where WeChat is configured) is routed and sent by
    # functions the app registers (`outbox.register_router`, `delivery.register_sender`).
    kind: str = Field(default=SubscriptionKind.WEBHOOK, max_length=16)


class OutboxEvent(SQLModel, table=True):
    """One event as it will be sent: a case event with its case as it was right after the
    change, or an early warning's (`warning.*`) with the warning (`warning_data`; `case_data`
    empty, `case_id` minus the warning's id: the key that keeps one warning's events in order,
    never a case's)."""

    __tablename__ = "outbox_event"

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=32)
    case_id: int = Field(index=True)
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The case's columns (`notify.outbox.snapshot`) and, for escalations, the escalation.
    case_data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    escalation: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    warning_data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class OutboxDelivery(SQLModel, table=True):
    __tablename__ = "outbox_delivery"
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        Index("ix_outbox_delivery_due", "status", "next_attempt_at"),
        # The ordering key: a subscription's deliveries of one case go out in id order.
        Index("ix_outbox_delivery_order", "subscription_id", "case_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(sa_column=Column(ForeignKey("outbox_event.id"), nullable=False))
    subscription_id: int = Field(
        sa_column=Column(ForeignKey("webhook_subscription.id"), nullable=False)
    )
    case_id: int
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # A worker's claim: others leave the row alone until then (a killed worker's claim expires).
    leased_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    lease_token: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, max_length=500)
    last_status_code: int | None = Field(default=None)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # A failed attempt after this instant is the last: the delivery turns `failed` (set at
    # creation to the event + the retry horizon, and again by `gridgov outbox retry`).
    retry_until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
