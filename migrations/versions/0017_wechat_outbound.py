"""WeChat official account, outbound: the shared access token and the media download queue

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02

`wechat_access_token`: the one access token per appid every process uses, with the lease of the
process refreshing it. `wechat_media`: residents' photos to fetch from the media API (by MsgId),
with their draft or case, attempts, lease, expiry and the attachment they became. `wechat_push`:
the template messages sent per (outbox event, openid), so a retried delivery tells nobody twice.
`webhook_subscription.kind` (`webhook` | `wechat`), at most one subscription of each other kind:
status pushes to residents go through the outbox like every webhook (the app makes the `wechat`
subscription, routes and sends its deliveries where WeChat is configured).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_subscription = sa.table(
    "webhook_subscription",
    sa.column("id", sa.Integer()),
    sa.column("kind", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscription") as batch:
        batch.add_column(
            sa.Column(
                "kind",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="webhook",
            )
        )
    op.create_index(
        "uq_webhook_subscription_kind",
        "webhook_subscription",
        ["kind"],
        unique=True,
        sqlite_where=sa.text("kind != 'webhook'"),
        postgresql_where=sa.text("kind != 'webhook'"),
    )
    op.create_table(
        "wechat_access_token",
        sa.Column("appid", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=600), nullable=True),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("leased_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint("appid"),
    )
    op.create_table(
        "wechat_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("media_id", sa.String(length=256), nullable=False),
        sa.Column("msg_id", sa.String(length=64), nullable=False),
        sa.Column("draft_id", sa.String(length=64), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("leased_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attachment_id", sa.String(length=64), nullable=True),
        sa.Column("linked", sa.Boolean(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["attachment_id"], ["attachment.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["gg_case.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("msg_id"),
    )
    op.create_index(
        "ix_wechat_media_due", "wechat_media", ["status", "next_attempt_at"], unique=False
    )
    op.create_index("ix_wechat_media_draft", "wechat_media", ["openid", "draft_id"], unique=False)
    op.create_table(
        "wechat_push",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("wechat_msgid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("sent_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["outbox_event.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "openid"),
    )


def downgrade() -> None:
    op.drop_table("wechat_push")
    op.drop_index("ix_wechat_media_draft", table_name="wechat_media")
    op.drop_index("ix_wechat_media_due", table_name="wechat_media")
    op.drop_table("wechat_media")
    op.drop_table("wechat_access_token")
    wechat = sa.select(_subscription.c.id).where(_subscription.c.kind != "webhook")
    op.execute(
        sa.table("outbox_delivery", sa.column("subscription_id", sa.Integer()))
        .delete()
        .where(sa.column("subscription_id").in_(wechat))
    )
    op.execute(_subscription.delete().where(_subscription.c.kind != "webhook"))
    op.drop_index("uq_webhook_subscription_kind", table_name="webhook_subscription")
    with op.batch_alter_table("webhook_subscription") as batch:
        batch.drop_column("kind")
