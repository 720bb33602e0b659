"""the outbox: webhook subscriptions, case events to send and their deliveries

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

`webhook_subscription`: a receiver (URL, signing secret) for a department, an area, or all, and
optionally some event types. `outbox_event`: a case event some subscription takes, written in
the transaction of the change, with the case as it was then. `outbox_delivery`: one per event
and subscription, with its status, attempts, next attempt, a worker's lease and the retry horizon.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("department_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("area_code", sqlmodel.sql.sqltypes.AutoString(length=15), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("case_data", sa.JSON(), nullable=False),
        sa.Column("escalation", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_outbox_event_case_id"), "outbox_event", ["case_id"], unique=False)
    op.create_table(
        "outbox_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("leased_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retry_until", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["outbox_event.id"]),
        sa.ForeignKeyConstraint(["subscription_id"], ["webhook_subscription.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "subscription_id"),
    )
    op.create_index(
        "ix_outbox_delivery_due", "outbox_delivery", ["status", "next_attempt_at"], unique=False
    )
    op.create_index(
        "ix_outbox_delivery_order",
        "outbox_delivery",
        ["subscription_id", "case_id", "status", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_delivery_order", table_name="outbox_delivery")
    op.drop_index("ix_outbox_delivery_due", table_name="outbox_delivery")
    op.drop_table("outbox_delivery")
    op.drop_index(op.f("ix_outbox_event_case_id"), table_name="outbox_event")
    op.drop_table("outbox_event")
    op.drop_table("webhook_subscription")
