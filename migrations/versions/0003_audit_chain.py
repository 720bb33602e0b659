"""audit chain: global links, case state digests, the head

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

History rows get the digest of the case state they produced (`state_hash`) and a link into one
global chain (`gseq`, `gprev_hash`, `prev_case_id`, `ghash`); `audit_head` holds the last link.

Rows already there stay as they are: a migration runs without the application's key, so it
cannot compute their HMACs. They form the "legacy" segment, still checked by the per-case rule,
and the global chain starts from a keyless digest of that segment (per case: the number of
legacy rows and the hash of the last one; GENESIS when there are none), stored here as the
head. The first row the service links afterwards carries that anchor in its HMAC, which seals
it: from then on, removing or cutting a legacy case's history is caught like any other. What
the legacy segment cannot prove (nothing recorded the case state then) is said in the README.

Downgrade drops the links and the head; rows written since then keep their hashes, which the
per-case rule of 0002 does not reproduce (they include the state digest), so `audit verify` of
the older code would flag them.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
# Must stay equal to dispatch.audit.legacy_anchor (tests/dispatch/test_audit_chain.py checks).
LEGACY_ANCHOR_TAG = "gridgov-audit-legacy-v1"


def _legacy_anchor(conn: sa.Connection) -> str:
    rows = conn.execute(
        sa.text(
            "SELECT h.case_id, c.n, h.hash FROM case_history h"
            " JOIN (SELECT case_id, count(*) AS n, max(seq) AS last_seq"
            "       FROM case_history GROUP BY case_id) c"
            " ON h.case_id = c.case_id AND h.seq = c.last_seq"
            " ORDER BY h.case_id"
        )
    ).all()
    if not rows:
        return GENESIS
    digest = hashlib.sha256(f"{LEGACY_ANCHOR_TAG}\n".encode())
    for case_id, count, last_hash in rows:
        digest.update(f"{int(case_id)}:{int(count)}:{last_hash}\n".encode())
    return digest.hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("case_history") as batch:
        batch.add_column(
            sa.Column("state_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch.add_column(sa.Column("gseq", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("gprev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch.add_column(sa.Column("prev_case_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("ghash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    op.create_index(op.f("ix_case_history_gseq"), "case_history", ["gseq"], unique=True)
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("gseq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    anchor = _legacy_anchor(op.get_bind())
    op.bulk_insert(head, [{"id": 1, "gseq": 0, "hash": anchor, "case_id": None}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index(op.f("ix_case_history_gseq"), table_name="case_history")
    with op.batch_alter_table("case_history") as batch:
        batch.drop_column("ghash")
        batch.drop_column("prev_case_id")
        batch.drop_column("gprev_hash")
        batch.drop_column("gseq")
        batch.drop_column("state_hash")
