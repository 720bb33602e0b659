"""intake without an account: reports keyed by (channel, reporter identity, client_id), cases
carry their channel

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

`gg_case.source` becomes `channel` (renamed in place, so no table that points at cases is
rebuilt), spelled as the contract names channels: `command_centre` becomes `dispatcher`.

A report was keyed by (reporter_id, client_id), reporter_id an account. It is now keyed by
(channel, reporter_identity, client_id): the identity is what the channel calls the sender (an
account's id, a WeChat openid, an Open311 key), the account is `user_id`, optional. Rows already
there were all filed by accounts: their identity is the account's id, their channel their old
source, respelled. The report's link to its case is deferred to the commit, so intake can claim
the key and the case id in one statement before it writes the case.

The audit log is untouched: its state digest still names the case's channel `source` and spells
`dispatcher` `command_centre` (dispatch/audit.py), so every state sealed before verifies.

Downgrade refuses while reports without an account exist (the old key cannot hold them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The one channel whose old spelling differs (the contract's names since this revision).
OLD_DISPATCHER = "command_centre"
DISPATCHER = "dispatcher"


def upgrade() -> None:
    # RENAME COLUMN: PostgreSQL, and SQLite since 3.25, without rebuilding gg_case.
    op.execute("ALTER TABLE gg_case RENAME COLUMN source TO channel")
    op.execute(
        sa.text("UPDATE gg_case SET channel = :new WHERE channel = :old").bindparams(
            new=DISPATCHER, old=OLD_DISPATCHER
        )
    )
    op.create_index(op.f("ix_gg_case_channel"), "gg_case", ["channel"], unique=False)

    with op.batch_alter_table("report") as batch:
        batch.add_column(
            sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch.add_column(sa.Column("reporter_identity", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
    op.execute(
        sa.text(
            "UPDATE report SET"
            " channel = CASE WHEN source = :old THEN :new ELSE source END,"
            " reporter_identity = CAST(reporter_id AS VARCHAR(128)),"
            " user_id = reporter_id"
        ).bindparams(new=DISPATCHER, old=OLD_DISPATCHER)
    )
    # SQLite rebuilds `report` here (nothing points at it); PostgreSQL alters it in place.
    with op.batch_alter_table("report") as batch:
        batch.drop_constraint("uq_report_reporter_id_client_id", type_="unique")
        batch.drop_constraint("fk_report_reporter_id_app_user", type_="foreignkey")
        batch.drop_constraint("fk_report_case_id_gg_case", type_="foreignkey")
        batch.drop_column("reporter_id")
        batch.drop_column("source")
        batch.alter_column(
            "channel", existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        )
        batch.alter_column(
            "reporter_identity", existing_type=sa.String(length=128), nullable=False
        )
        batch.create_foreign_key(
            op.f("fk_report_user_id_app_user"), "app_user", ["user_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_report_case_id_gg_case"),
            "gg_case",
            ["case_id"],
            ["id"],
            deferrable=True,
            initially="DEFERRED",
        )
        batch.create_unique_constraint(
            op.f("uq_report_channel_reporter_identity_client_id"),
            ["channel", "reporter_identity", "client_id"],
        )


def downgrade() -> None:
    conn = op.get_bind()
    accountless = conn.execute(
        sa.text("SELECT count(*) FROM report WHERE user_id IS NULL")
    ).scalar_one()
    if accountless:
        raise RuntimeError(
            f"{accountless} reports were filed without an account; the schema before 0007 "
            "keys reports by account and cannot hold them"
        )
    with op.batch_alter_table("report") as batch:
        batch.add_column(
            sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch.add_column(sa.Column("reporter_id", sa.Integer(), nullable=True))
    op.execute(
        sa.text(
            "UPDATE report SET source = CASE WHEN channel = :new THEN :old ELSE channel END,"
            " reporter_id = user_id"
        ).bindparams(new=DISPATCHER, old=OLD_DISPATCHER)
    )
    with op.batch_alter_table("report") as batch:
        batch.drop_constraint("uq_report_channel_reporter_identity_client_id", type_="unique")
        batch.drop_constraint("fk_report_user_id_app_user", type_="foreignkey")
        batch.drop_constraint("fk_report_case_id_gg_case", type_="foreignkey")
        batch.drop_column("user_id")
        batch.drop_column("reporter_identity")
        batch.drop_column("channel")
        batch.alter_column("reporter_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column(
            "source", existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        )
        batch.create_foreign_key(
            op.f("fk_report_reporter_id_app_user"), "app_user", ["reporter_id"], ["id"]
        )
        batch.create_foreign_key(
            op.f("fk_report_case_id_gg_case"), "gg_case", ["case_id"], ["id"]
        )
        batch.create_unique_constraint(
            op.f("uq_report_reporter_id_client_id"), ["reporter_id", "client_id"]
        )

    op.drop_index(op.f("ix_gg_case_channel"), table_name="gg_case")
    op.execute(
        sa.text("UPDATE gg_case SET channel = :old WHERE channel = :new").bindparams(
            new=DISPATCHER, old=OLD_DISPATCHER
        )
    )
    op.execute("ALTER TABLE gg_case RENAME COLUMN channel TO source")
