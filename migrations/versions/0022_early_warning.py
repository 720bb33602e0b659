"""early warning (预警): warnings, the claims that run each scan once, warning events

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03

`early_warning`: space-time clusters and per-grid spikes found by the scans, open →
acknowledged → closed. `surveillance_run`: one row per scan kind and slot (day or hour); the
process that inserts it runs the scan. `outbox_event.warning_data`: a `warning.*` event carries
the warning instead of a case.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "early_warning",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("category_code", sa.String(length=2), nullable=False),
        sa.Column("subcategory_code", sa.String(length=8), nullable=True),
        sa.Column("area_code", sa.String(length=15), nullable=False),
        sa.Column("center_lat", sa.Float(), nullable=False),
        sa.Column("center_lng", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("window_start", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("observed", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("recurrence_days", sa.Float(), nullable=True),
        sa.Column("case_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("raised_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_early_warning_status_kind", "early_warning", ["status", "kind", "category_code"]
    )
    op.create_index(op.f("ix_early_warning_area_code"), "early_warning", ["area_code"])
    op.create_table(
        "surveillance_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.String(length=32), nullable=False),
        sa.Column("started_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "slot"),
    )
    op.add_column("outbox_event", sa.Column("warning_data", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox_event", "warning_data")
    op.drop_table("surveillance_run")
    op.drop_index(op.f("ix_early_warning_area_code"), table_name="early_warning")
    op.drop_index("ix_early_warning_status_kind", table_name="early_warning")
    op.drop_table("early_warning")
