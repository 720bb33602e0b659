"""console: indexes for the SLA board's card lists and a unit's queue by deadline

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03

`GET /v1/cases?sla=overdue|warning&sort=due_at` (the SLA board) and a department's queue
(`department_code`, by `due_at`) read the first page from an index instead of sorting every
matching case (see bench/console.py).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_gg_case_warning_due", "gg_case", ["warning_level", "due_at"])
    op.create_index("ix_gg_case_department_due", "gg_case", ["department_code", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_gg_case_department_due", table_name="gg_case")
    op.drop_index("ix_gg_case_warning_due", table_name="gg_case")
