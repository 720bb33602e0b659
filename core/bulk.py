"""Set-based writes on PostgreSQL: many rows in one statement, the rows sent as one JSON array and
read back with `json_to_recordset`, instead of executemany (which pipelines the round trips but
still runs, plans and locks one statement per row on the server: ~0.3 ms a row, most of a
1,000-case sweep) or one array parameter per column (psycopg quotes each element of a text-format
array in Python, ~30 µs a row).

The statements are text built once per (table, columns), the recordset typed by the table's own
column types; values are encoded by the standard library's C encoder, instants as ISO 8601 with
their offset (the columns are `timestamptz`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import Table, TextClause, text
from sqlalchemy.dialects import postgresql

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_QUOTE = _DIALECT.identifier_preparer.quote


def _recordset(table: Table, columns: Sequence[str]) -> str:
    types = ", ".join(f"{_QUOTE(c)} {table.c[c].type.compile(dialect=_DIALECT)}" for c in columns)
    return f"json_to_recordset(CAST(:rows AS json)) AS v({types})"


@cache
def insert_rows(table: Table, columns: tuple[str, ...]) -> TextClause:
    """INSERT of many rows (parameters: `rows_param(rows, columns)`) in one statement."""
    names = ", ".join(_QUOTE(c) for c in columns)
    return text(
        f"INSERT INTO {_QUOTE(table.name)} ({names}) "
        f"SELECT {names} FROM {_recordset(table, columns)}"
    )


@cache
def update_rows(
    table: Table, keys: tuple[str, ...], columns: tuple[str, ...], bump: str | None = None
) -> TextClause:
    """UPDATE of many rows in one statement: each row (matched on every column of `keys`) gets
    its own values of `columns`; `bump`, when given, is a counter column raised by one (an
    optimistic lock whose old value is among the keys). The result's rowcount is the rows
    matched."""
    target = _QUOTE(table.name)
    sets = [f"{_QUOTE(c)} = v.{_QUOTE(c)}" for c in columns]
    if bump is not None:
        sets.append(f"{_QUOTE(bump)} = {target}.{_QUOTE(bump)} + 1")
    match = " AND ".join(f"{target}.{_QUOTE(k)} = v.{_QUOTE(k)}" for k in keys)
    return text(
        f"UPDATE {target} SET {', '.join(sets)} "
        f"FROM {_recordset(table, (*keys, *columns))} WHERE {match}"
    )


def _instant(value: object) -> str:
    if isinstance(value, datetime | date):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("naive datetime given to a bulk write")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# One encoder, built once (`json.dumps` with options builds one per call). No check for cycles:
# the rows are flat values and small JSON documents made by the service, and the check costs a
# dictionary entry per container and per value the default turns into a string.
_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, default=_instant)


def rows_param(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, str]:
    """The parameters of `insert_rows`/`update_rows` for these rows."""
    body = [{name: row[name] for name in columns} for row in rows]
    return {"rows": _ENCODER.encode(body)}
