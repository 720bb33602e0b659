"""area command centres and the rest of the loop

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

`app_user.area_code`: a dispatcher scoped to a 镇街 or 村居 command centre (None: district-wide).
`gg_case`: a pending extension request (hours), the working seconds approved requests added,
the 回访 (satisfaction, when) and until when a dissatisfied visit allows a reopen; the running
stage's limit (签收 or 核查: warn, due, card).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# New columns of gg_case, in upgrade order (dropped in reverse). The tables are altered in
# place, never rebuilt (SQLite's batch mode would drop gg_case and app_user, which other tables
# point at).
def _case_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("extension_request_hours", sa.Integer(), nullable=True),
        sa.Column("extension_seconds", sa.Float(), nullable=False, server_default="0"),
        sa.Column("visit_satisfaction", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
        sa.Column("visited_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reopen_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stage_warn_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stage_due_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "stage_warning",
            sqlmodel.sql.sqltypes.AutoString(length=8),
            nullable=False,
            server_default="none",
        ),
    )


FK = "fk_app_user_area_code_area"


def upgrade() -> None:
    for column in _case_columns():
        op.add_column("gg_case", column)
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE app_user ADD COLUMN area_code VARCHAR(15) "
            f"CONSTRAINT {FK} REFERENCES area (code)"
        )
    else:
        op.add_column("app_user", sa.Column("area_code", sa.String(length=15), nullable=True))
        op.create_foreign_key(op.f(FK), "app_user", "area", ["area_code"], ["code"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(FK), "app_user", type_="foreignkey")
    op.execute("ALTER TABLE app_user DROP COLUMN area_code")
    for column in reversed(_case_columns()):
        op.execute(f"ALTER TABLE gg_case DROP COLUMN {column.name}")
