"""Open311 GeoReport v2: api keys of civic apps and request tokens

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

`open311_key`: a civic app's api key, kept as its SHA-256 (shown once, at issue), revocable.
`open311_request`: per case filed through Open311, the token its answer carried, the app's
account and device ids, its address text and media URL (never fetched).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "open311_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("key_prefix", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index(op.f("ix_open311_key_name"), "open311_key", ["name"], unique=False)
    op.create_table(
        "open311_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("device_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("address_string", sa.String(length=500), nullable=True),
        sa.Column("media_url", sa.String(length=2000), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["gg_case.id"]),
        sa.ForeignKeyConstraint(["key_id"], ["open311_key.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
        sa.UniqueConstraint("token"),
    )
    op.create_index(op.f("ix_open311_request_key_id"), "open311_request", ["key_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_open311_request_key_id"), table_name="open311_request")
    op.drop_table("open311_request")
    op.drop_index(op.f("ix_open311_key_name"), table_name="open311_key")
    op.drop_table("open311_key")
