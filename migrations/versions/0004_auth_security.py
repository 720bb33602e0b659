"""auth: revoked tokens, auth revision, login attempts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    auth_revision = op.create_table(
        "auth_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("changed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_revision")),
    )
    # The single row exists from the start, so bumping it is one UPDATE in every process.
    op.bulk_insert(auth_revision, [{"id": 1, "revision": 0, "changed_at": datetime.now(UTC)}])
    op.create_table(
        "revoked_token",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_revoked_token_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_token")),
    )
    op.create_index(
        op.f("ix_revoked_token_expires_at"), "revoked_token", ["expires_at"], unique=False
    )
    op.create_index(op.f("ix_revoked_token_user_id"), "revoked_token", ["user_id"], unique=False)
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempt")),
    )
    op.create_index(op.f("ix_login_attempt_at"), "login_attempt", ["at"], unique=False)
    op.create_index(
        "ix_login_attempt_username_at", "login_attempt", ["username", "at"], unique=False
    )
    op.create_index("ix_login_attempt_address_at", "login_attempt", ["address", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_login_attempt_address_at", table_name="login_attempt")
    op.drop_index("ix_login_attempt_username_at", table_name="login_attempt")
    op.drop_index(op.f("ix_login_attempt_at"), table_name="login_attempt")
    op.drop_table("login_attempt")
    op.drop_index(op.f("ix_revoked_token_user_id"), table_name="revoked_token")
    op.drop_index(op.f("ix_revoked_token_expires_at"), table_name="revoked_token")
    op.drop_table("revoked_token")
    op.drop_table("auth_revision")
