"""duplicate candidates found at intake

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02

`duplicate_candidate`: for a new case, the open cases of its category near it when it came in
(并单 candidates), with their distance. `ix_gg_case_category_lat_lng` lets intake find them with a
bounding box inside one category on either database.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "duplicate_candidate",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("candidate_case_id", sa.Integer(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("found_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["gg_case.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["candidate_case_id"], ["gg_case.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", "candidate_case_id"),
    )
    op.create_index(
        op.f("ix_duplicate_candidate_candidate_case_id"),
        "duplicate_candidate",
        ["candidate_case_id"],
        unique=False,
    )
    op.create_index(
        "ix_gg_case_category_lat_lng", "gg_case", ["category_code", "lat", "lng"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_gg_case_category_lat_lng", table_name="gg_case")
    op.drop_index(
        op.f("ix_duplicate_candidate_candidate_case_id"), table_name="duplicate_candidate"
    )
    op.drop_table("duplicate_candidate")
