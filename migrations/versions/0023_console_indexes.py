"""console: indexes for the SLA board (its counts and card lists) and a unit's queue

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03

`GET /v1/cases?sla=overdue|warning&sort=due_at` (the SLA board) and a department's queue
(`department_code`, by `due_at`) read the first page from an index instead of sorting every
matching case; `GET /v1/stats/open` counts the open cases from a partial index of them alone
(place, unit, card, deadline) instead of reading the table (see bench/console.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The statuses of the loop when this was written (dispatch.models.OPEN_LOOP_PREDICATE).
OPEN = (
    "status IN ('accepted', 'dispatched', 'registered', 'reported', 'resolved', 'suspended', "
    "'verified')"
)


def upgrade() -> None:
    op.create_index("ix_gg_case_warning_due", "gg_case", ["warning_level", "due_at"])
    op.create_index("ix_gg_case_department_due", "gg_case", ["department_code", "due_at"])
    op.create_index(
        "ix_gg_case_open",
        "gg_case",
        ["grid_code", "department_code", "warning_level", "due_at"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_gg_case_open", table_name="gg_case")
    op.drop_index("ix_gg_case_department_due", table_name="gg_case")
    op.drop_index("ix_gg_case_warning_due", table_name="gg_case")
