"""privacy: log of reads of unmasked personal data

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pii_access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kinds", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("endpoint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_pii_access_log_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pii_access_log")),
    )
    op.create_index(op.f("ix_pii_access_log_case_id"), "pii_access_log", ["case_id"], unique=False)
    op.create_index(op.f("ix_pii_access_log_user_id"), "pii_access_log", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_pii_access_log_user_id"), table_name="pii_access_log")
    op.drop_index(op.f("ix_pii_access_log_case_id"), table_name="pii_access_log")
    op.drop_table("pii_access_log")
