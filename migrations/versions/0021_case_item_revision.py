"""cases keep their item (条) and the catalogue revision they were routed by

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03

`gg_case.item_code`: the item a case was registered as (`register` / `recategorize` with
`item_code`); `catalogue_revision`: the catalogue revision that routed it (0: the packaged
catalogue; every case before this revision), whose escalation ladder it climbs whatever is
imported later; `accept_hours` / `verify_hours`: the item's stage limits (NULL: the service's);
`classification_uncertain`: the classifier was not sure at intake (NULL: not classified, or
before this revision). Indexes on the report time (with and without the category) for heat
(`GET /v1/stats/heat`) and the early-warning scans.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "classification_uncertain",
    "item_code",
    "catalogue_revision",
    "accept_hours",
    "verify_hours",
)


def upgrade() -> None:
    # Plain ALTER TABLE on both databases (a batch rebuild of gg_case would trip the foreign keys
    # pointing at it); a constant default is no table rewrite on PostgreSQL 11+.
    op.add_column("gg_case", sa.Column("classification_uncertain", sa.Boolean(), nullable=True))
    op.add_column("gg_case", sa.Column("item_code", sa.String(length=8), nullable=True))
    op.add_column(
        "gg_case",
        sa.Column("catalogue_revision", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("gg_case", sa.Column("accept_hours", sa.Float(), nullable=True))
    op.add_column("gg_case", sa.Column("verify_hours", sa.Float(), nullable=True))
    op.create_index("ix_gg_case_reported_at", "gg_case", ["reported_at"])
    op.create_index("ix_gg_case_category_reported_at", "gg_case", ["category_code", "reported_at"])


def downgrade() -> None:
    op.drop_index("ix_gg_case_category_reported_at", table_name="gg_case")
    op.drop_index("ix_gg_case_reported_at", table_name="gg_case")
    for name in reversed(_COLUMNS):
        op.drop_column("gg_case", name)
