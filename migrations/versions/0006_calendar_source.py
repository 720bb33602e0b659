"""calendar: where each override came from, and the years whose published schedule was entered

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calendar_override") as batch:
        # Rows entered before this revision came from `gridgov calendar set`.
        batch.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="override")
        )
        batch.add_column(sa.Column("schedule_year", sa.Integer(), nullable=True))
    op.create_table(
        "calendar_year",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("published_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_year")),
    )


def downgrade() -> None:
    op.drop_table("calendar_year")
    with op.batch_alter_table("calendar_override") as batch:
        batch.drop_column("schedule_year")
        batch.drop_column("source")
