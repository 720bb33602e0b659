"""Tables from the files a district has: CSV (UTF-8, with or without BOM) and XLSX (openpyxl).
Each row comes with its number as a spreadsheet shows it (the header is row 1), so an error can
name the sheet, row and column."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Table:
    sheet: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (row number, column → text), blank rows dropped


class UnreadableFile(ValueError):
    """Not a CSV or XLSX this can read (the message says why)."""


def read_table(path: Path, *, sheet: str | None = None) -> Table:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx(path, sheet)
    raise UnreadableFile(f"{path.name}: expected a .csv or .xlsx file")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _table(sheet: str, lines: Iterator[list[Any]]) -> Table:
    try:
        header = [_cell(h) for h in next(lines)]
    except StopIteration:
        raise UnreadableFile(f"sheet {sheet}: empty (no header row)") from None
    rows = []
    for number, values in enumerate(lines, start=2):
        cells = [_cell(v) for v in values]
        if not any(cells):
            continue
        rows.append(
            (number, {h: (cells[i] if i < len(cells) else "") for i, h in enumerate(header) if h})
        )
    return Table(sheet, header, rows)


def _csv(path: Path) -> Table:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{path.name}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return _table(path.name, iter(csv.reader(io.StringIO(text))))


def read_workbook(path: Path) -> dict[str, Table]:
    """Every sheet of an XLSX workbook by name, read in one pass (a file holding several
    tables, such as the catalogue's items, escalation and catalogue sheets). A sheet with no
    header row is left out, as if it were missing."""
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise UnreadableFile(f"{path.name}: expected an .xlsx file")
    book = _open_xlsx(path)
    try:
        tables = {}
        for ws in book.worksheets:
            try:
                tables[ws.title] = _table(
                    ws.title, (list(r) for r in ws.iter_rows(values_only=True))
                )
            except UnreadableFile:
                continue
        return tables
    finally:
        book.close()


def _open_xlsx(path: Path) -> Any:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        return load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, OSError, KeyError, ValueError) as exc:
        raise UnreadableFile(f"{path.name}: not an XLSX workbook ({exc})") from None


def _xlsx(path: Path, sheet: str | None) -> Table:
    book = _open_xlsx(path)
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise UnreadableFile(f"{path.name}: no sheet named {sheet!r}")
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        return _table(ws.title, (list(r) for r in ws.iter_rows(values_only=True)))
    finally:
        book.close()
