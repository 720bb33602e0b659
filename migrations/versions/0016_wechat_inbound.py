"""WeChat official account, inbound: message dedupe and residents' conversations

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

`wechat_message`: one row per message or event handled, keyed by its dedupe key (hashed MsgId,
or FromUserName + CreateTime for events), with the reply it got, so WeChat's retries and a copy
racing into another process get the same reply and make one effect. `wechat_draft`: each
resident's report in the making (one per OpenID), and the case it last became.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_message",
        sa.Column("msg_key", sa.String(length=64), nullable=False),
        sa.Column("msg_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("received_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["gg_case.id"], name="fk_wechat_message_case_id_gg_case"
        ),
        sa.PrimaryKeyConstraint("msg_key", name="pk_wechat_message"),
    )
    op.create_index(
        "ix_wechat_message_received_at", "wechat_message", ["received_at"], unique=False
    )
    op.create_table(
        "wechat_draft",
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("draft_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("photos", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("case_no", sa.String(length=32), nullable=True),
        sa.Column("filed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["gg_case.id"], name="fk_wechat_draft_case_id_gg_case"),
        sa.PrimaryKeyConstraint("openid", name="pk_wechat_draft"),
    )


def downgrade() -> None:
    op.drop_table("wechat_draft")
    op.drop_index("ix_wechat_message_received_at", table_name="wechat_message")
    op.drop_table("wechat_message")
