"""the 考核 rollup: counts per local day (and per month), department and grid

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

`stats_daily`: the additive parts of every 考核 figure (counts, handling seconds) per local day,
department and grid, rewritten by `gridgov stats refresh` and the scheduler inside `serve`
(dispatch/stats_rollup.py). `stats_monthly`: the same summed per calendar month, per department
and village and per grid (all departments, `department_code` ''). `stats_rollup`:
one row, how far the rollup is complete (`rolled_through`, and `gseq`, the global history
position it has seen) and the refresher's claim. Empty at first: until the first refresh every
figure is computed live, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _counts() -> list[sa.Column[object]]:
    return [
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "received",
                "closed",
                "on_time",
                "returned",
                "extended",
                "redone",
                "visited",
                "satisfied",
            )
        ),
        sa.Column("handling_seconds", sa.Float(), nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    for table, period, place in (
        ("stats_daily", "day", "grid_code"),
        ("stats_monthly", "month", "area_code"),
    ):
        op.create_table(
            table,
            *_counts(),
            sa.Column(period, sa.Date(), nullable=False),
            sa.Column("department_code", sa.String(length=16), nullable=False),
            sa.Column(place, sa.String(length=15), nullable=False),
            sa.PrimaryKeyConstraint(period, "department_code", place, name=f"pk_{table}"),
        )
    rollup = op.create_table(
        "stats_rollup",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rolled_through", sa.Date(), nullable=True),
        sa.Column("gseq", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("leased_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_stats_rollup"),
    )
    op.bulk_insert(rollup, [{"id": 1, "gseq": 0}])


def downgrade() -> None:
    op.drop_table("stats_rollup")
    op.drop_table("stats_monthly")
    op.drop_table("stats_daily")
