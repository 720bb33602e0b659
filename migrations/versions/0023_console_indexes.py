"""console: the open cases' cards in a narrow table, indexes for the SLA board and a unit's queue

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03

`GET /v1/stats/open` (the SLA board, the map's colours) counts the open cases per place or unit
from a partial index of them alone (`ix_gg_case_open`: place, unit, deadline, and the id to join
on) instead of reading the table; a department's queue (`department_code`, by `due_at`) reads
its first page from `ix_gg_case_department_due`.

The yellow and red cards of the open cases are kept apart, in `case_card` (one row per case in
the loop whose `warning_level` is not `none`: its level, status and deadline), by triggers on
`gg_case` like the sweep's queue (0013, 0019). No index of `gg_case` names `warning_level`: the
sweep changes it on most of the cases it touches, and an UPDATE that changes an indexed column
cannot stay on the row's page (a HOT update) but adds an entry to every one of the table's
indexes. With `warning_level` in two indexes a sweep of 1,000 cases took ~180-210 ms, without
~125 ms (bench/sweep.py, 100,000 open cases). The board counts cards by joining `case_card`; the SLA board's card lists (a level, by
deadline) read their page from its index and join only those cases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The statuses of the loop when this was written (dispatch.models.OPEN_LOOP_STATUSES).
_STATUSES = "('accepted', 'dispatched', 'registered', 'reported', 'resolved', 'suspended', 'verified')"
OPEN = f"status IN {_STATUSES}"


def _carded(row: str) -> str:
    """A case row (NEW, n, …) that has a card row: in the loop and yellow or red."""
    return f"{row}.status IN {_STATUSES} AND {row}.warning_level <> 'none'"


_COLUMNS = "case_id, warning_level, status, due_at"
_UPSERT = (
    "ON CONFLICT (case_id) DO UPDATE SET warning_level = EXCLUDED.warning_level, "
    "status = EXCLUDED.status, due_at = EXCLUDED.due_at"
)
_CHANGED = (
    "(o.warning_level IS DISTINCT FROM n.warning_level OR o.status IS DISTINCT FROM n.status "
    "OR o.due_at IS DISTINCT FROM n.due_at)"
)
_PG_FUNCTIONS = (
    f"""
CREATE FUNCTION gg_case_card_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO case_card ({_COLUMNS})
    SELECT n.id, n.warning_level, n.status, n.due_at FROM inserted_cases AS n
    WHERE {_carded("n")};
    RETURN NULL;
END
$$
""",
    # Only rows whose card, status or deadline changed are looked at: the sweep's other
    # changes, and most actions', leave the card table alone.
    f"""
CREATE FUNCTION gg_case_card_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM case_card USING updated_cases AS n JOIN previous_cases AS o ON o.id = n.id
    WHERE case_card.case_id = n.id
      AND {_CHANGED} AND NOT ({_carded("n")});
    INSERT INTO case_card ({_COLUMNS})
    SELECT n.id, n.warning_level, n.status, n.due_at
    FROM updated_cases AS n JOIN previous_cases AS o ON o.id = n.id
    WHERE {_CHANGED} AND {_carded("n")}
    {_UPSERT};
    RETURN NULL;
END
$$
""",
)
_PG_TRIGGERS = (
    "CREATE TRIGGER gg_case_card_insert AFTER INSERT ON gg_case "
    "REFERENCING NEW TABLE AS inserted_cases "
    "FOR EACH STATEMENT EXECUTE FUNCTION gg_case_card_inserted()",
    "CREATE TRIGGER gg_case_card_update AFTER UPDATE ON gg_case "
    "REFERENCING OLD TABLE AS previous_cases NEW TABLE AS updated_cases "
    "FOR EACH STATEMENT EXECUTE FUNCTION gg_case_card_updated()",
)
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER gg_case_card_insert AFTER INSERT ON gg_case "
    f"WHEN {_carded('NEW')} BEGIN "
    f"INSERT INTO case_card ({_COLUMNS}) "
    "VALUES (NEW.id, NEW.warning_level, NEW.status, NEW.due_at); END",
    "CREATE TRIGGER gg_case_card_set AFTER UPDATE OF warning_level, status, due_at ON gg_case "
    f"WHEN {_carded('NEW')} BEGIN "
    f"INSERT INTO case_card ({_COLUMNS}) "
    f"VALUES (NEW.id, NEW.warning_level, NEW.status, NEW.due_at) {_UPSERT}; END",
    "CREATE TRIGGER gg_case_card_clear AFTER UPDATE OF warning_level, status ON gg_case "
    f"WHEN NOT ({_carded('NEW')}) BEGIN "
    "DELETE FROM case_card WHERE case_id = NEW.id; END",
    # No reliance on the connection's foreign_keys pragma for the cascade.
    "CREATE TRIGGER gg_case_card_delete AFTER DELETE ON gg_case BEGIN "
    "DELETE FROM case_card WHERE case_id = OLD.id; END",
)
_SQLITE_TRIGGER_NAMES = (
    "gg_case_card_insert",
    "gg_case_card_set",
    "gg_case_card_clear",
    "gg_case_card_delete",
)


def upgrade() -> None:
    op.create_index("ix_gg_case_department_due", "gg_case", ["department_code", "due_at"])
    op.create_index(
        "ix_gg_case_open",
        "gg_case",
        ["grid_code", "department_code", "due_at", "id"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_table(
        "case_card",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("warning_level", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["gg_case.id"],
            name=op.f("fk_case_card_case_id_gg_case"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_card")),
    )
    op.create_index("ix_case_card_warning_due", "case_card", ["warning_level", "due_at"])
    op.execute(
        f"INSERT INTO case_card ({_COLUMNS}) "
        f"SELECT c.id, c.warning_level, c.status, c.due_at FROM gg_case AS c WHERE {_carded('c')}"
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in (*_PG_FUNCTIONS, *_PG_TRIGGERS):
            op.execute(statement)
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER gg_case_card_update ON gg_case")
        op.execute("DROP TRIGGER gg_case_card_insert ON gg_case")
        op.execute("DROP FUNCTION gg_case_card_updated()")
        op.execute("DROP FUNCTION gg_case_card_inserted()")
    else:
        for name in _SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("ix_case_card_warning_due", table_name="case_card")
    op.drop_table("case_card")
    op.drop_index("ix_gg_case_open", table_name="gg_case")
    op.drop_index("ix_gg_case_department_due", table_name="gg_case")
