"""the 考核 rollup's daily rows in the monthly rows' shape: three projections, not department × grid

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

`stats_daily` held one row per day, department and grid: ~3,300 a day on a million cases a year,
so a period cutting months (read from the daily rows) summed tens of thousands of rows and
missed the 300 ms target. Its rows become what the readers group by, like `stats_monthly`'s:
per department and village (`area_code` 12 digits: a 镇街 or 村居 command centre's scope is a
prefix of it), per grid over all departments (`department_code` ''), and per department over
all areas (`area_code` ''), which `stats_monthly` gains too. The existing rows are converted
(the new ones are sums of them), so the figures stay as they were and nothing is read live
meanwhile. Downgrade cannot split the sums back per grid: it empties the rollup (the old
tables' shape, `stats_rollup` back to never refreshed), and the next refresh rebuilds it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "received",
    "closed",
    "on_time",
    "returned",
    "extended",
    "redone",
    "visited",
    "satisfied",
    "handling_seconds",
    "handled",
)
VILLAGE_DIGITS = 12
SUMS = ", ".join(f"sum({name})" for name in COUNTS)
NAMES = ", ".join(COUNTS)


def _counts() -> list[sa.Column[object]]:
    return [
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS[:-2]),
        sa.Column("handling_seconds", sa.Float(), nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
    ]


def _daily(place: str) -> None:
    op.create_table(
        "stats_daily",
        *_counts(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department_code", sa.String(length=16), nullable=False),
        sa.Column(place, sa.String(length=15), nullable=False),
        sa.PrimaryKeyConstraint("day", "department_code", place, name="pk_stats_daily"),
    )


def upgrade() -> None:
    # The old rows are kept aside while the new table (same name, same key name) is made.
    op.rename_table("stats_daily", "stats_daily_0011")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE stats_daily_0011 RENAME CONSTRAINT pk_stats_daily TO pk_0011")
    _daily("area_code")
    columns = f"day, department_code, area_code, {NAMES}"
    village = f"substr(grid_code, 1, {VILLAGE_DIGITS})"
    op.execute(
        f"INSERT INTO stats_daily ({columns}) SELECT day, department_code, {village}, {SUMS}"
        f" FROM stats_daily_0011 GROUP BY day, department_code, {village}"
    )
    op.execute(
        f"INSERT INTO stats_daily ({columns}) SELECT day, '', grid_code, {SUMS}"
        " FROM stats_daily_0011 GROUP BY day, grid_code"
    )
    op.execute(
        f"INSERT INTO stats_daily ({columns}) SELECT day, department_code, '', {SUMS}"
        " FROM stats_daily_0011 GROUP BY day, department_code"
    )
    op.drop_table("stats_daily_0011")
    op.execute(
        f"INSERT INTO stats_monthly (month, department_code, area_code, {NAMES})"
        f" SELECT month, department_code, '', {SUMS} FROM stats_monthly"
        " WHERE department_code <> '' GROUP BY month, department_code"
    )


def downgrade() -> None:
    op.drop_table("stats_daily")
    _daily("grid_code")
    op.execute("DELETE FROM stats_monthly")
    op.execute(
        "UPDATE stats_rollup SET rolled_through = NULL, gseq = 0, refreshed_at = NULL,"
        " lease_token = NULL, leased_until = NULL"
    )
