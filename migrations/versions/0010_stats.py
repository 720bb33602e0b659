"""statistics (考核): each case's handling time in working hours, indexes for the period queries

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

`gg_case.handling_seconds`: working seconds (the department's calendar) from the case's
dispatch to its result (`resolve`), written by `resolve`; cases resolved before this revision
have none and are left out of `avg_handling_working_hours`. Indexes: cases by closure time and
history rows by action and time, which the statistics read by period (dispatch/stats.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite ≥ 3.35): a batch rebuild of gg_case would
    # trip the foreign keys pointing at it.
    op.add_column("gg_case", sa.Column("handling_seconds", sa.Float(), nullable=True))
    op.create_index("ix_gg_case_closed_at", "gg_case", ["closed_at"])
    op.create_index("ix_case_history_action_at", "case_history", ["action", "at"])


def downgrade() -> None:
    op.drop_index("ix_case_history_action_at", table_name="case_history")
    op.drop_index("ix_gg_case_closed_at", table_name="gg_case")
    op.drop_column("gg_case", "handling_seconds")
