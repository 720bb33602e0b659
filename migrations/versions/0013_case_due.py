"""the sweep's queue of due instants in a narrow table, so a swept case row is updated in place

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

`case_due`: one row per case that has a next SLA instant (`gg_case.next_check_at` not NULL),
kept by triggers on `gg_case` (any writer: the unit of work, Core inserts, SQL by hand), indexed
by the instant. The sweep reads and claims due cases there, and `ix_gg_case_next_check_at` goes:
an UPDATE that changes an indexed column of `gg_case` must add an entry to every one of its ten
indexes (on PostgreSQL ~0.2 ms a row, most of a 1,000-case sweep), while one that changes none
can stay on the row's page without touching them (a HOT update). `gg_case` is given a fill
factor of 85 on PostgreSQL so new pages keep room for such updates (existing pages get it when
rewritten: `VACUUM FULL gg_case` in a quiet hour). `ix_case_history_case_id` goes too: the
unique (case_id, seq) index serves every look-up by case.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_FUNCTION = """
CREATE FUNCTION gg_case_due_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.next_check_at IS NULL THEN
        DELETE FROM case_due WHERE case_id = NEW.id;
    ELSE
        INSERT INTO case_due (case_id, next_check_at) VALUES (NEW.id, NEW.next_check_at)
        ON CONFLICT (case_id) DO UPDATE SET next_check_at = EXCLUDED.next_check_at;
    END IF;
    RETURN NULL;
END
$$
"""
_PG_TRIGGERS = (
    "CREATE TRIGGER gg_case_due_insert AFTER INSERT ON gg_case FOR EACH ROW "
    "WHEN (NEW.next_check_at IS NOT NULL) EXECUTE FUNCTION gg_case_due_sync()",
    "CREATE TRIGGER gg_case_due_update AFTER UPDATE OF next_check_at ON gg_case FOR EACH ROW "
    "WHEN (OLD.next_check_at IS DISTINCT FROM NEW.next_check_at) "
    "EXECUTE FUNCTION gg_case_due_sync()",
)
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER gg_case_due_insert AFTER INSERT ON gg_case "
    "WHEN NEW.next_check_at IS NOT NULL BEGIN "
    "INSERT INTO case_due (case_id, next_check_at) VALUES (NEW.id, NEW.next_check_at); END",
    "CREATE TRIGGER gg_case_due_set AFTER UPDATE OF next_check_at ON gg_case "
    "WHEN NEW.next_check_at IS NOT NULL BEGIN "
    "INSERT INTO case_due (case_id, next_check_at) VALUES (NEW.id, NEW.next_check_at) "
    "ON CONFLICT (case_id) DO UPDATE SET next_check_at = excluded.next_check_at; END",
    "CREATE TRIGGER gg_case_due_clear AFTER UPDATE OF next_check_at ON gg_case "
    "WHEN NEW.next_check_at IS NULL BEGIN "
    "DELETE FROM case_due WHERE case_id = NEW.id; END",
    # No reliance on the connection's foreign_keys pragma for the cascade.
    "CREATE TRIGGER gg_case_due_delete AFTER DELETE ON gg_case BEGIN "
    "DELETE FROM case_due WHERE case_id = OLD.id; END",
)
_SQLITE_TRIGGER_NAMES = ("gg_case_due_insert", "gg_case_due_set", "gg_case_due_clear", "gg_case_due_delete")


def upgrade() -> None:
    op.create_table(
        "case_due",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("next_check_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["gg_case.id"],
            name=op.f("fk_case_due_case_id_gg_case"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_due")),
    )
    op.create_index("ix_case_due_next_check_at", "case_due", ["next_check_at"], unique=False)
    op.execute(
        "INSERT INTO case_due (case_id, next_check_at) "
        "SELECT id, next_check_at FROM gg_case WHERE next_check_at IS NOT NULL"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for trigger in _PG_TRIGGERS:
            op.execute(trigger)
        op.execute("ALTER TABLE gg_case SET (fillfactor = 85)")
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
    op.drop_index("ix_gg_case_next_check_at", table_name="gg_case")
    op.drop_index("ix_case_history_case_id", table_name="case_history")


def downgrade() -> None:
    op.create_index("ix_case_history_case_id", "case_history", ["case_id"], unique=False)
    op.create_index("ix_gg_case_next_check_at", "gg_case", ["next_check_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE gg_case RESET (fillfactor)")
        op.execute("DROP TRIGGER gg_case_due_update ON gg_case")
        op.execute("DROP TRIGGER gg_case_due_insert ON gg_case")
        op.execute("DROP FUNCTION gg_case_due_sync()")
    else:
        for name in _SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_case_due_next_check_at", table_name="case_due")
    op.drop_table("case_due")
