"""The catalogue as a spreadsheet (XLSX or CSV): one row per item (条), the shape districts
keep their catalogue in, so it can be edited in Excel and imported back.

The `items` table repeats each subcategory's columns on every row of its items (a subcategory
without items has one row with the item columns empty). An XLSX workbook also holds the
escalation ladders (`escalation`) and the version (`catalogue`); a CSV holds the items table
only, and its import keeps the ladders and version of the catalogue in force.

Reading checks what only a spreadsheet can get wrong (cells, rows that must agree, codes that
repeat) and builds the JSON document of the catalogue, remembering the row each category,
subcategory and item came from; `import_catalogue` then validates that document like any other
and asks `locate` where a problem came from, so every problem names its sheet, row and column.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InvalidCatalogue
from taxonomy.catalogue import Catalogue, TimeUnit, Urgency
from taxonomy.sheets import Table, UnreadableFile, read_table, read_workbook

Location = tuple[int | str, ...]

ITEMS, ESCALATION, META = "items", "escalation", "catalogue"

CATEGORY_COLUMNS = ("category_code", "category_name")
SUBCATEGORY_COLUMNS = (
    "subcategory_code",
    "subcategory_name",
    "keywords",
    "department_code",
    "urgency",
    "time_limit",
    "time_unit",
)
ITEM_COLUMNS = (
    "item_code",
    "item_name",
    "filing_condition",
    "closing_condition",
    "item_department_code",
    "item_urgency",
    "item_time_limit",
    "item_time_unit",
    "accept_hours",
    "verify_hours",
    "area_departments",
)
COLUMNS = CATEGORY_COLUMNS + SUBCATEGORY_COLUMNS + ITEM_COLUMNS
# A sheet may leave out the optional columns (keywords, overrides); these it must have.
REQUIRED_COLUMNS = (
    "category_code",
    "category_name",
    "subcategory_code",
    "subcategory_name",
    "department_code",
    "time_limit",
    "time_unit",
    "item_code",
    "item_name",
    "filing_condition",
    "closing_condition",
)
ESCALATION_COLUMNS = ("urgency", "past_due", "level")
META_COLUMNS = ("key", "value")

KEYWORD_SEPARATOR = "|"
FORMATS = ("json", "xlsx", "csv")

_CODE_DIGITS = {"category_code": 2, "subcategory_code": 4, "item_code": 7}
_AREA_CODE = re.compile(r"^[0-9]{9}([0-9]{3})?$")

# Where a field of the document is kept in the items table, per level.
_CATEGORY_FIELDS = {"code": "category_code", "name": "category_name"}
_SUBCATEGORY_FIELDS = {
    "code": "subcategory_code",
    "name": "subcategory_name",
    "keywords": "keywords",
    "department_code": "department_code",
    "urgency": "urgency",
    "time_limit": "time_limit",
}
_ITEM_FIELDS = {
    "code": "item_code",
    "name": "item_name",
    "filing_condition": "filing_condition",
    "closing_condition": "closing_condition",
    "department_code": "item_department_code",
    "urgency": "item_urgency",
    "time_limit": "item_time_limit",
    "accept_hours": "accept_hours",
    "verify_hours": "verify_hours",
    "area_departments": "area_departments",
}


# --- export ----------------------------------------------------------------------------------


def format_of(path: Path) -> str | None:
    """The format a file's suffix names (json, xlsx or csv), else None."""
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else None


def number_text(value: float) -> str:
    """A number as a person writes it: 2 → "2", 1.5 → "1.5" (and back to the same float)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def item_rows(catalogue: Catalogue) -> list[list[str | int | float | None]]:
    """The items table without its header: text where a cell is text (codes keep their
    leading zeros), numbers where it is a number, None where it is empty."""
    rows: list[list[str | int | float | None]] = []
    for cat, sub in catalogue.iter_subcategories():
        head: list[str | int | float | None] = [
            cat.code,
            cat.name,
            sub.code,
            sub.name,
            KEYWORD_SEPARATOR.join(sub.keywords),
            sub.department_code,
            sub.urgency.value,
            sub.time_limit.value,
            sub.time_limit.unit.value,
        ]
        if not sub.items:
            rows.append(head + [None] * len(ITEM_COLUMNS))
        for item in sub.items:
            rows.append(
                head
                + [
                    item.code,
                    item.name,
                    item.filing_condition,
                    item.closing_condition,
                    item.department_code,
                    item.urgency.value if item.urgency else None,
                    item.time_limit.value if item.time_limit else None,
                    item.time_limit.unit.value if item.time_limit else None,
                    _plain(item.accept_hours),
                    _plain(item.verify_hours),
                    "; ".join(f"{a.area_code}={a.department_code}" for a in item.area_departments)
                    or None,
                ]
            )
    return rows


def _plain(value: float | None) -> int | float | None:
    """A whole number of hours as an int, so a spreadsheet shows 2 rather than 2.0."""
    if value is None:
        return None
    return int(value) if value.is_integer() else value


def _text(value: str | int | float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return number_text(value)


def catalogue_csv(catalogue: Catalogue) -> str:
    """The items table as CSV, starting with a byte-order mark: Excel then reads it as UTF-8
    (without one it guesses the local code page and the Chinese comes out garbled)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in item_rows(catalogue):
        writer.writerow([_text(v) for v in row])
    return "\ufeff" + out.getvalue()


def write_xlsx(catalogue: Catalogue, target: Path | io.BytesIO) -> None:
    """The whole catalogue as a workbook: items, escalation ladders and version."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)

    def sheet(title: str, header: Iterable[str], rows: Iterable[list[Any]]) -> None:
        ws = book.create_sheet(title)
        ws.append(list(header))
        for row in rows:
            cells: list[Any] = []
            for value in row:
                if isinstance(value, str) and value.startswith("="):
                    # Text, not a formula: the cell must come back as written.
                    cell = WriteOnlyCell(ws, value=value)
                    cell.data_type = "s"
                    cells.append(cell)
                else:
                    cells.append(value)
            ws.append(cells)

    sheet(ITEMS, COLUMNS, item_rows(catalogue))
    ladders = catalogue.escalation
    sheet(
        ESCALATION,
        ESCALATION_COLUMNS,
        (
            [urgency.value, _plain(step.past_due), step.level]
            for urgency in Urgency
            for step in ladders.for_urgency(urgency)
        ),
    )
    sheet(META, META_COLUMNS, [["version", catalogue.version]])
    book.save(target)


def catalogue_xlsx(catalogue: Catalogue) -> bytes:
    """The workbook's bytes."""
    out = io.BytesIO()
    write_xlsx(catalogue, out)
    return out.getvalue()


# --- import ----------------------------------------------------------------------------------


@dataclass
class SheetCatalogue:
    """A catalogue document read from a spreadsheet, the problems found while reading it, and
    where each of its parts came from (`locate`, for `import_catalogue`)."""

    data: dict[str, Any]
    problems: list[str]
    items_sheet: str
    category_rows: list[int] = field(default_factory=list)
    subcategory_rows: list[list[int]] = field(default_factory=list)
    item_rows: list[list[list[int]]] = field(default_factory=list)
    escalation_rows: dict[str, list[int]] = field(default_factory=dict)
    version_row: int | None = None

    def locate(self, loc: Location) -> str:
        """The sheet, row and column a pydantic error location of `data` came from (just the
        sheet, or the rows, when the problem spans several)."""
        try:
            if loc and loc[0] == "categories":
                return self._locate_items(loc[1:])
            if loc and loc[0] == "escalation":
                return self._locate_escalation(loc[1:])
            if loc and loc[0] == "version" and self.version_row is not None:
                return f"sheet {META}, row {self.version_row}, column value"
        except (IndexError, KeyError, TypeError):
            pass
        return f"sheet {self.items_sheet}"

    def _locate_items(self, loc: Location) -> str:
        if not loc or not isinstance(loc[0], int):
            return f"sheet {self.items_sheet}"
        i, rest = loc[0], loc[1:]
        if rest[:1] == ("subcategories",) and len(rest) > 1 and isinstance(rest[1], int):
            j, rest = rest[1], rest[2:]
            if rest[:1] == ("items",) and len(rest) > 1 and isinstance(rest[1], int):
                k, rest = rest[1], rest[2:]
                row = self.item_rows[i][j][k]
                return self._place(row, _column(_ITEM_FIELDS, rest, "item_code", "item_"))
            row = self.subcategory_rows[i][j]
            return self._place(row, _column(_SUBCATEGORY_FIELDS, rest, "subcategory_code", ""))
        row = self.category_rows[i]
        return self._place(row, _column(_CATEGORY_FIELDS, rest, "category_code", ""))

    def _locate_escalation(self, loc: Location) -> str:
        rows = self.escalation_rows[str(loc[0])]
        if len(loc) > 2 and isinstance(loc[1], int):
            return f"sheet {ESCALATION}, row {rows[loc[1]]}, column {loc[2]}"
        return f"sheet {ESCALATION}, rows {rows[0]}-{rows[-1]} (urgency {loc[0]})"

    def _place(self, row: int, column: str) -> str:
        return f"sheet {self.items_sheet}, row {row}, column {column}"


def _column(fields: Mapping[str, str], rest: Location, default: str, prefix: str) -> str:
    """The column holding the field a location names (a time limit's unit has its own)."""
    if not rest or not isinstance(rest[0], str) or rest[0] not in fields:
        return default
    if rest[0] == "time_limit" and rest[1:2] == ("unit",):
        return f"{prefix}time_unit"
    return fields[rest[0]]


def read_catalogue_file(path: Path, current: Catalogue) -> SheetCatalogue:
    """The catalogue in an .xlsx workbook or a .csv items table (whose escalation ladders and
    version are those of `current`, the catalogue in force). Raises UnreadableFile for a file
    that is no such table, InvalidCatalogue when a sheet or column is missing."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = read_table(path)
        items = _read_items(table)
        kept = current.model_dump(mode="json")
        items.data["version"] = kept["version"]
        items.data["escalation"] = kept["escalation"]
        return items
    if suffix != ".xlsx":
        raise UnreadableFile(f"{path.name}: expected a .json, .xlsx or .csv file")
    tables = read_workbook(path)
    missing = [
        f"sheet {name}: missing" for name in (ITEMS, ESCALATION) if name not in tables
    ] + _missing_columns(tables.get(ESCALATION), ESCALATION_COLUMNS)
    missing += _missing_columns(tables.get(META), META_COLUMNS)
    if ITEMS not in tables or missing:
        # Nothing further can be read; say everything missing at once.
        missing += _missing_columns(tables.get(ITEMS), REQUIRED_COLUMNS)
        raise InvalidCatalogue(problems=missing)
    result = _read_items(tables[ITEMS])
    _read_escalation(tables[ESCALATION], result)
    if META in tables:
        _read_meta(tables[META], result)
    return result


def _missing_columns(table: Table | None, columns: Iterable[str]) -> list[str]:
    if table is None:
        return []
    problems = [
        f"sheet {table.sheet}, column {c}: missing" for c in columns if c not in table.header
    ]
    named = [h for h in table.header if h]
    problems += [
        f"sheet {table.sheet}, column {h}: appears {named.count(h)} times in the header row"
        for h in dict.fromkeys(named)
        if named.count(h) > 1
    ]
    return problems


@dataclass
class _Category:
    row: int
    name: str
    subcategories: dict[str, _Subcategory] = field(default_factory=dict)


@dataclass
class _Subcategory:
    row: int
    cells: dict[str, str]  # its columns (and category_code) on its first row, to agree with
    document: dict[str, Any] | None  # None: its own cells are wrong; not placed
    items: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


class _ItemsReader:
    """The items table, row by row: each problem with its row and column; the rows that are
    right build the document."""

    def __init__(self, table: Table) -> None:
        self.sheet = table.sheet
        self.problems: list[str] = []
        self.categories: dict[str, _Category] = {}
        self.subcategories: dict[str, _Subcategory] = {}
        self.item_codes: dict[str, int] = {}
        self.wrong: set[tuple[int, str]] = set()  # (row, column) of the cells said wrong

    def problem(self, row: int, column: str, message: str) -> None:
        self.problems.append(f"sheet {self.sheet}, row {row}, column {column}: {message}")
        self.wrong.add((row, column))

    def code(self, row: int, cells: Mapping[str, str], column: str) -> str | None:
        """A code cell that is filled and has its number of digits, else None (said why)."""
        value = cells.get(column, "")
        digits = _CODE_DIGITS[column]
        if not value:
            self.problem(row, column, "empty")
            return None
        if not (value.isascii() and value.isdigit() and len(value) == digits):
            hint = ""
            if value.isascii() and value.isdigit() and len(value) < digits:
                hint = " (a number cell drops leading zeros: format the column as text)"
            self.problem(row, column, f"{value!r} must be {digits} digits{hint}")
            return None
        return value

    def read(self, number: int, cells: Mapping[str, str]) -> None:
        cat_code = self.code(number, cells, "category_code")
        sub_code = self.code(number, cells, "subcategory_code")
        if cat_code and sub_code and not sub_code.startswith(cat_code):
            self.problem(
                number,
                "subcategory_code",
                f"{sub_code} does not start with its category code {cat_code}",
            )
            sub_code = None
        category = self.categories.get(cat_code) if cat_code else None
        if cat_code and category is None:
            name = cells.get("category_name", "")
            if not name:
                self.problem(number, "category_name", "empty")
            else:
                category = self.categories[cat_code] = _Category(number, name)
        elif category is not None:
            self.agree(number, cells, "category_name", category.name, category.row, "category")
        sub = self.subcategories.get(sub_code) if sub_code else None
        if sub_code and sub is None:
            document = self.subcategory(number, cells, sub_code)
            if category is None:
                document = None
            sub = self.subcategories[sub_code] = _Subcategory(
                number, {c: cells.get(c, "") for c in _AGREEING}, document
            )
            if category is not None:
                category.subcategories[sub_code] = sub
        elif sub is not None:
            for column in _AGREEING:
                self.agree(
                    number, cells, column, sub.cells[column], sub.row, "subcategory", keywords=True
                )
        item = self.item(number, cells, sub_code)
        if item is not None and sub is not None:
            sub.items.append((number, item))

    def agree(
        self,
        row: int,
        cells: Mapping[str, str],
        column: str,
        first: str,
        first_row: int,
        what: str,
        *,
        keywords: bool = False,
    ) -> None:
        """A repeated cell must say what the first row of its category or subcategory says."""
        value = cells.get(column, "")
        if (first_row, column) in self.wrong:
            return  # said once for the first row, not again for each row repeating it
        if keywords and column == "keywords":
            same = _keywords(value) == _keywords(first)
        else:
            same = value == first
        if not same and not value:
            self.problem(
                row, column, f"empty, but row {first_row} (the {what}'s first row) has {first!r}"
            )
        elif not same:
            self.problem(
                row,
                column,
                f"{value!r} differs from {first!r} on row {first_row}, the {what}'s first row",
            )

    def subcategory(self, row: int, cells: Mapping[str, str], code: str) -> dict[str, Any] | None:
        """The subcategory a first row describes (without items), None when a cell is wrong."""
        ok = True
        for column in ("subcategory_name", "department_code"):
            if not cells.get(column):
                self.problem(row, column, "empty")
                ok = False
        limit = self.whole(row, cells, "time_limit", required=True)
        unit = self.choice(row, cells, "time_unit", TimeUnit, required=True)
        urgency = self.choice(row, cells, "urgency", Urgency, required=False)
        if not ok or limit is None or unit is None or urgency is False:
            return None
        document: dict[str, Any] = {
            "code": code,
            "name": cells["subcategory_name"],
            "keywords": _keywords(cells.get("keywords", "")),
            "department_code": cells["department_code"],
            "time_limit": {"value": limit, "unit": unit},
            "items": [],
        }
        if urgency:
            document["urgency"] = urgency
        return document

    def item(
        self, row: int, cells: Mapping[str, str], sub_code: str | None
    ) -> dict[str, Any] | None:
        """The item a row describes, None for a row without one or when a cell is wrong."""
        code = cells.get("item_code", "")
        if not code:
            given = [c for c in ITEM_COLUMNS[1:] if cells.get(c)]
            if given:
                self.problem(row, "item_code", f"empty, but {', '.join(given)} are given")
            return None
        code_ok = self.code(row, cells, "item_code") is not None
        if code_ok and sub_code and not code.startswith(sub_code):
            self.problem(
                row, "item_code", f"{code} does not start with its subcategory code {sub_code}"
            )
            code_ok = False
        if code_ok:
            first = self.item_codes.get(code)
            if first is not None:
                self.problem(row, "item_code", f"{code} repeats the item code of row {first}")
                code_ok = False
            else:
                self.item_codes[code] = row
        ok = code_ok
        for column in ("item_name", "filing_condition", "closing_condition"):
            if not cells.get(column):
                self.problem(row, column, "empty")
                ok = False
        urgency = self.choice(row, cells, "item_urgency", Urgency, required=False)
        limit = self.whole(row, cells, "item_time_limit", required=False)
        unit = self.choice(row, cells, "item_time_unit", TimeUnit, required=False)
        has_limit, has_unit = bool(cells.get("item_time_limit")), bool(cells.get("item_time_unit"))
        if has_limit != has_unit:
            missing = "item_time_unit" if has_limit else "item_time_limit"
            other = "item_time_limit" if has_limit else "item_time_unit"
            self.problem(row, missing, f"empty, but {other} is given (both or neither)")
            ok = False
        hours = {c: self.hours(row, cells, c) for c in ("accept_hours", "verify_hours")}
        if any(not good for good, _ in hours.values()):
            ok = False
        areas = self.areas(row, cells)
        if (
            not ok
            or urgency is False
            or (has_limit and limit is None)
            or unit is False
            or areas is None
        ):
            return None
        item: dict[str, Any] = {
            "code": code,
            "name": cells["item_name"],
            "filing_condition": cells["filing_condition"],
            "closing_condition": cells["closing_condition"],
        }
        if cells.get("item_department_code"):
            item["department_code"] = cells["item_department_code"]
        if urgency:
            item["urgency"] = urgency
        if limit is not None and unit:
            item["time_limit"] = {"value": limit, "unit": unit}
        item.update({c: v for c, (_, v) in hours.items() if v is not None})
        if areas:
            item["area_departments"] = areas
        return item

    def whole(
        self, row: int, cells: Mapping[str, str], column: str, *, required: bool
    ) -> int | None:
        """A whole number above 0, as time limits are (a spreadsheet may hold 24 as "24.0")."""
        text = cells.get(column, "")
        if not text:
            if required:
                self.problem(row, column, "empty")
            return None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not value.is_integer():
            self.problem(row, column, f"{text!r} is not a whole number")
            return None
        if value <= 0:
            self.problem(row, column, f"{text} must be greater than 0")
            return None
        return int(value)

    def hours(self, row: int, cells: Mapping[str, str], column: str) -> tuple[bool, float | None]:
        """Whether the cell is right, and its number of hours (None when empty)."""
        text = cells.get(column, "")
        if not text:
            return True, None
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            self.problem(row, column, f"{text!r} is not a number")
            return False, None
        return True, value

    def choice(
        self,
        row: int,
        cells: Mapping[str, str],
        column: str,
        kind: type[TimeUnit] | type[Urgency],
        *,
        required: bool,
    ) -> str | None | bool:
        """One of the values of `kind`; None when empty (and allowed), False when wrong."""
        text = cells.get(column, "")
        allowed = [v.value for v in kind]
        if not text:
            if required:
                self.problem(row, column, f"empty (one of {', '.join(allowed)})")
                return False
            return None
        if text not in allowed:
            self.problem(row, column, f"{text!r} is not one of {', '.join(allowed)}")
            return False
        return text

    def areas(self, row: int, cells: Mapping[str, str]) -> list[dict[str, str]] | None:
        """`AREA=DEPT; AREA=DEPT` (area code of 9 or 12 digits); None when wrong."""
        text = cells.get("area_departments", "")
        out: list[dict[str, str]] = []
        seen: set[str] = set()
        ok = True
        for part in (p.strip() for p in text.split(";")):
            if not part:
                continue
            area, sep, department = (s.strip() for s in part.partition("="))
            if not sep or not department:
                self.problem(row, "area_departments", f"{part!r} is not AREA=DEPARTMENT")
                ok = False
            elif not _AREA_CODE.match(area):
                self.problem(row, "area_departments", f"area code {area!r} must be 9 or 12 digits")
                ok = False
            elif area in seen:
                self.problem(row, "area_departments", f"area {area} is named twice")
                ok = False
            else:
                seen.add(area)
                out.append({"area_code": area, "department_code": department})
        return out if ok else None


# The columns every row of a subcategory repeats (its category's code with them).
_AGREEING = ("category_code",) + SUBCATEGORY_COLUMNS[1:]


def _keywords(text: str) -> list[str]:
    return [k.strip() for k in text.split(KEYWORD_SEPARATOR) if k.strip()]


def _read_items(table: Table) -> SheetCatalogue:
    """The items table → the document's categories (in order of first appearance)."""
    missing = _missing_columns(table, REQUIRED_COLUMNS)
    if missing:
        raise InvalidCatalogue(problems=missing)
    reader = _ItemsReader(table)
    for number, cells in table.rows:
        reader.read(number, cells)
    result = SheetCatalogue(data={}, problems=reader.problems, items_sheet=table.sheet)
    if not table.rows:
        result.problems.append(f"sheet {table.sheet}: no rows")
    categories = []
    for category_code, category in reader.categories.items():
        placed = [s for s in category.subcategories.values() if s.document is not None]
        if not placed:
            continue  # each of its subcategories has a problem said already
        subcategories = []
        result.category_rows.append(category.row)
        result.subcategory_rows.append([s.row for s in placed])
        result.item_rows.append([[row for row, _ in s.items] for s in placed])
        for sub in placed:
            assert sub.document is not None
            subcategories.append({**sub.document, "items": [item for _, item in sub.items]})
        categories.append(
            {"code": category_code, "name": category.name, "subcategories": subcategories}
        )
    result.data["categories"] = categories
    return result


def _read_escalation(table: Table, result: SheetCatalogue) -> None:
    """The ladders, one row per rung in order; left out of the document when a row is wrong
    (the import is refused then anyway)."""
    problems: list[str] = []
    ladders: dict[str, list[dict[str, float | int]]] = {u.value: [] for u in Urgency}
    rows: dict[str, list[int]] = {u.value: [] for u in Urgency}
    for number, cells in table.rows:
        where = f"sheet {table.sheet}, row {number}, column"
        urgency = cells.get("urgency", "")
        if urgency not in ladders:
            allowed = ", ".join(ladders)
            problems.append(f"{where} urgency: {urgency!r} is not one of {allowed}")
            continue
        try:
            past_due = float(cells.get("past_due", ""))
        except ValueError:
            past_due = math.nan
        if not math.isfinite(past_due):
            problems.append(f"{where} past_due: {cells.get('past_due', '')!r} is not a number")
            continue
        level_text = cells.get("level", "")
        if not (level_text.isascii() and level_text.isdigit()):
            problems.append(f"{where} level: {level_text!r} is not a whole number")
            continue
        ladders[urgency].append({"past_due": past_due, "level": int(level_text)})
        rows[urgency].append(number)
    for urgency, steps in ladders.items():
        if not steps and not problems:
            problems.append(f"sheet {table.sheet}, column urgency: no rows for {urgency}")
    result.problems += problems
    if not problems:
        result.data["escalation"] = ladders
        result.escalation_rows = rows


def _read_meta(table: Table, result: SheetCatalogue) -> None:
    """key/value rows: only `version` for now."""
    for number, cells in table.rows:
        key, value = cells.get("key", ""), cells.get("value", "")
        if key != "version":
            result.problems.append(
                f"sheet {table.sheet}, row {number}, column key: unknown key {key!r} "
                "(known: version)"
            )
        elif not (value.isascii() and value.isdigit()):
            result.problems.append(
                f"sheet {table.sheet}, row {number}, column value: version {value!r} must be a "
                "whole number"
            )
        else:
            result.data["version"] = int(value)
            result.version_row = number
