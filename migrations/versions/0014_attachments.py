"""attachments (media package): uploaded images and their links to cases

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

`attachment`: an uploaded image as served (re-encoded) and its thumbnail, by the sha256 of the
files under GRIDGOV_ATTACHMENT_DIR, with its owner (an account, else a channel's identity) and
whether a case uses it yet (never linked ones are swept after a day: `ix_attachment_unlinked`).
`attachment_link`: which case uses which attachment, and why (report, resolve, verify).
`media_prune`: the one row the orphan sweep claims (so two schedulers never run it together).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachment",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("identity", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column(
            "thumb_content_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        ),
        sa.Column("thumb_size", sa.Integer(), nullable=False),
        sa.Column("thumb_sha256", sa.String(length=64), nullable=False),
        sa.Column("thumb_width", sa.Integer(), nullable=False),
        sa.Column("thumb_height", sa.Integer(), nullable=False),
        sa.Column("original_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("original_size", sa.Integer(), nullable=False),
        sa.Column("linked", sa.Boolean(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_attachment_unlinked", "attachment", ["linked", "created_at"], unique=False)
    op.create_index(op.f("ix_attachment_user_id"), "attachment", ["user_id"], unique=False)
    op.create_index(op.f("ix_attachment_sha256"), "attachment", ["sha256"], unique=False)
    op.create_index(
        op.f("ix_attachment_thumb_sha256"), "attachment", ["thumb_sha256"], unique=False
    )
    op.create_table(
        "attachment_link",
        sa.Column("attachment_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("linked_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["attachment_id"], ["attachment.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["gg_case.id"]),
        sa.PrimaryKeyConstraint("attachment_id", "case_id", "purpose"),
    )
    op.create_index(
        op.f("ix_attachment_link_case_id"), "attachment_link", ["case_id"], unique=False
    )
    op.create_table(
        "media_prune",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_run_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("media_prune")
    op.drop_index(op.f("ix_attachment_link_case_id"), table_name="attachment_link")
    op.drop_table("attachment_link")
    op.drop_index(op.f("ix_attachment_thumb_sha256"), table_name="attachment")
    op.drop_index(op.f("ix_attachment_sha256"), table_name="attachment")
    op.drop_index(op.f("ix_attachment_user_id"), table_name="attachment")
    op.drop_index("ix_attachment_unlinked", table_name="attachment")
    op.drop_table("attachment")
