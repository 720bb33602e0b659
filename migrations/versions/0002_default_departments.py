"""default departments (reference data the default catalogue routes to)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dispatch.defaults import default_departments

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

department = sa.table(
    "department",
    sa.column("code", sa.String),
    sa.column("name", sa.String),
    sa.column("short_name", sa.String),
    sa.column("active", sa.Boolean),
)


def upgrade() -> None:
    conn = op.get_bind()
    existing = {row[0] for row in conn.execute(sa.select(department.c.code))}
    rows = [
        {**d, "active": True} for d in default_departments() if d["code"] not in existing
    ]
    if rows:
        op.bulk_insert(department, rows)


def downgrade() -> None:
    codes = [d["code"] for d in default_departments()]
    op.execute(department.delete().where(department.c.code.in_(codes)))
