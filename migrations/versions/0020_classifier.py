"""the learned classifier: trained models and a district's past cases

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03

`classifier_model`: each `gridgov classifier train` stores its model (a compressed .npz) with
what it learned from; the newest answers. `classifier_example`: past cases imported with
`gridgov classifier import-history`, learned from by the next training.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "classifier_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "classifier_example",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subcategory_code", sa.String(length=8), nullable=False),
        sa.Column("text", sa.String(length=4000), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("imported_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    training = op.create_table(
        "classifier_training",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lease_until", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(training, [{"id": 1, "lease_until": datetime(2000, 1, 1, tzinfo=UTC)}])
    op.create_index(
        op.f("ix_classifier_example_subcategory_code"),
        "classifier_example",
        ["subcategory_code"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_classifier_example_subcategory_code"), table_name="classifier_example")
    op.drop_table("classifier_training")
    op.drop_table("classifier_example")
    op.drop_table("classifier_model")
