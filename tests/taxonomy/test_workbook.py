"""The catalogue as a spreadsheet (XLSX workbook, CSV items table): a lossless round trip, a
district-sized workbook, and bad files refused whole with every problem's sheet, row and column.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from openpyxl import Workbook
from sqlmodel import Session

from app.cli import main
from taxonomy import service as taxonomy_service
from taxonomy import workbook
from taxonomy.catalogue import Catalogue, load_default_catalogue, parse_catalogue
from taxonomy.models import CatalogueRevision
from tests.taxonomy.conftest import OwnDb

CATALOGUE = load_default_catalogue()


def _rich() -> Catalogue:
    """The packaged catalogue with every optional column used, other ladders and version, and
    text a spreadsheet could mangle (a leading "=", a line break, a keyword with spaces)."""
    data: dict[str, Any] = CATALOGUE.model_dump(mode="json")
    data["version"] = 3
    data["escalation"]["urgent"] = [
        {"past_due": 0.0, "level": 1},
        {"past_due": 0.25, "level": 2},
        {"past_due": 1.5, "level": 3},
    ]
    sub = data["categories"][7]["subcategories"][1]
    sub["keywords"] = [*sub["keywords"], "灯杆 倾斜"]
    first, second = sub["items"][0], sub["items"][1]
    first.update(
        urgency="urgent",
        time_limit={"value": 36, "unit": "natural_hours"},
        accept_hours=1.5,
        verify_hours=2,
        area_departments=[
            {"area_code": "440604011", "department_code": "GDJ"},
            {"area_code": "440604011001", "department_code": "ZJJ"},
        ],
    )
    second.update(name="=路灯不亮", closing_condition="修复后复核\n夜间亮灯正常")
    data["categories"][16]["subcategories"][0]["items"] = []  # a subcategory without items
    return parse_catalogue(data)


def _read(path: Path, current: Catalogue = CATALOGUE) -> Catalogue:
    sheet = workbook.read_catalogue_file(path, current)
    assert sheet.problems == []
    return parse_catalogue(sheet.data)


def test_xlsx_round_trip_is_lossless(tmp_path: Path) -> None:
    for catalogue in (CATALOGUE, _rich()):
        path = tmp_path / "catalogue.xlsx"
        workbook.write_xlsx(catalogue, path)
        assert _read(path) == catalogue


def test_csv_round_trip_keeps_the_ladders_and_version_in_force(tmp_path: Path) -> None:
    rich = _rich()
    path = tmp_path / "catalogue.csv"
    text = workbook.catalogue_csv(rich)
    assert text.startswith("\ufeffcategory_code,category_name,")
    path.write_bytes(text.encode("utf-8"))
    assert _read(path, current=rich) == rich
    back = _read(path, current=CATALOGUE)
    assert back.escalation == CATALOGUE.escalation
    assert back.version == CATALOGUE.version
    assert back.categories == rich.categories
    path.write_bytes(text.removeprefix("\ufeff").encode("utf-8"))  # without a BOM too
    assert _read(path, current=rich) == rich


def test_numbers_are_written_as_people_write_them() -> None:
    assert workbook.number_text(2.0) == "2"
    assert workbook.number_text(1.5) == "1.5"
    row = next(r for r in workbook.item_rows(_rich()) if r[9] == "0802001")
    assert row[17:] == [1.5, 2, "440604011=GDJ; 440604011001=ZJJ"]


def test_a_keyword_with_a_bar_is_refused() -> None:
    data: dict[str, Any] = CATALOGUE.model_dump(mode="json")
    data["categories"][0]["subcategories"][0]["keywords"].append("楼上|楼下")
    with pytest.raises(ValueError, match=r'keywords: keyword .* must not contain "\|"'):
        parse_catalogue(data)


# --- through the command line -------------------------------------------------------------


def _cli(*args: str) -> Result:
    return CliRunner(env={"LC_ALL": "en_US.UTF-8"}).invoke(main, list(args))


def _revision(db: OwnDb) -> int:
    with Session(db.engine) as session:
        return taxonomy_service.latest_revision_id(session)


def test_cli_xlsx_export_then_import_gives_the_same_json(own_db: OwnDb, tmp_path: Path) -> None:
    original = _cli("taxonomy", "export")
    assert original.exit_code == 0, original.output
    refused = _cli("taxonomy", "export", "--format", "xlsx")
    assert refused.exit_code == 2
    assert "give --output FILE.xlsx" in refused.output
    path = tmp_path / "out.xlsx"
    assert _cli("taxonomy", "export", "--output", str(path)).exit_code == 0  # xlsx by suffix
    before = _revision(own_db)
    res = _cli("taxonomy", "import", str(path))
    assert res.exit_code == 0, res.output
    items = sum(len(s.items) for _, s in CATALOGUE.iter_subcategories())
    assert f"17 categories, 133 subcategories, {items} items" in res.output
    assert _revision(own_db) == before + 1
    assert json.loads(_cli("taxonomy", "export").output) == json.loads(original.output)
    csv_path = tmp_path / "out.csv"
    assert _cli("taxonomy", "export", "--output", str(csv_path)).exit_code == 0
    assert csv_path.read_bytes().startswith(b"\xef\xbb\xbfcategory_code,")
    assert _cli("taxonomy", "export", "--format", "csv").output.startswith("\ufeffcategory_code")
    res = _cli("taxonomy", "import", str(csv_path))
    assert res.exit_code == 0, res.output
    assert "escalation ladders and version kept from the catalogue in force" in res.output
    assert json.loads(_cli("taxonomy", "export").output) == json.loads(original.output)


def _write_book(path: Path, items: list[list[Any]], *, escalation: bool = True) -> None:
    """A workbook as a district might make it, written here with openpyxl directly."""
    book = Workbook(write_only=True)
    ws = book.create_sheet("items")
    ws.append(list(workbook.COLUMNS))
    for row in items:
        ws.append(row)
    if escalation:
        ladder = book.create_sheet("escalation")
        ladder.append(["urgency", "past_due", "level"])
        for urgency in ("normal", "urgent", "emergency"):
            for step in CATALOGUE.escalation.for_urgency(urgency):
                ladder.append([urgency, step.past_due, step.level])
    book.save(path)


def test_a_district_sized_workbook_imports(own_db: OwnDb, tmp_path: Path) -> None:
    """17 categories, 133 subcategories, 1,367 items: the seed platform's size."""
    subs = list(CATALOGUE.iter_subcategories())
    rows: list[list[Any]] = []
    for n, (cat, sub) in enumerate(subs):
        count = 1367 // len(subs) + (1 if n < 1367 % len(subs) else 0)
        head: list[Any] = [cat.code, cat.name, sub.code, sub.name, "|".join(sub.keywords)]
        head += [sub.department_code, sub.urgency.value, sub.time_limit.value]
        head += [sub.time_limit.unit.value]
        for k in range(1, count + 1):
            rows.append(
                head
                + [f"{sub.code}{k:03d}", f"{sub.name}第{k}条", f"{sub.name}：发现情形{k}，需立案"]
                + [f"{sub.name}：情形{k}已处置，复核通过"]
            )
    path = tmp_path / "district.xlsx"
    _write_book(path, rows)
    before = _revision(own_db)
    res = _cli("taxonomy", "import", str(path))
    assert res.exit_code == 0, res.output
    assert "17 categories, 133 subcategories, 1367 items" in res.output
    assert _revision(own_db) == before + 1
    with Session(own_db.engine) as session:
        stored = session.get(CatalogueRevision, before + 1)
        assert stored is not None
        catalogue = parse_catalogue(stored.data)
    assert sum(len(s.items) for _, s in catalogue.iter_subcategories()) == 1367
    assert catalogue.subcategory("0101") is not None
    assert catalogue.subcategory("0101").item("0101011") is not None  # type: ignore[union-attr]


def _rows() -> list[list[Any]]:
    return [list(r) for r in workbook.item_rows(CATALOGUE)]


def _col(name: str) -> int:
    return workbook.COLUMNS.index(name)


def _changed(*changes: tuple[int, str, Any]) -> list[list[Any]]:
    """The packaged catalogue's rows with cells changed: (index in the rows, column, value);
    index r is spreadsheet row r + 2."""
    rows = _rows()
    for index, column, value in changes:
        rows[index][_col(column)] = value
    return rows


def test_bad_files_are_refused_naming_sheet_row_and_column(own_db: OwnDb, tmp_path: Path) -> None:
    rows = _rows()
    dup = copy.deepcopy(rows[5])
    cases: list[tuple[str, list[list[Any]] | bytes, bool, list[str]]] = [
        (
            "missing.xlsx",
            _rows(),
            False,
            ["- sheet escalation: missing"],
        ),
        (
            "codes.xlsx",
            _changed((55, "item_code", "0101x01"), (3, "subcategory_code", "0201")),
            True,
            [
                "- sheet items, row 57, column item_code: '0101x01' must be 7 digits",
                "- sheet items, row 5, column subcategory_code: 0201 does not start with its "
                "category code 01",
            ],
        ),
        (
            "departments.xlsx",
            _changed(
                (9, "item_department_code", "NOPE"),
                (12, "area_departments", "440604011=NOPE2"),
            ),
            True,
            [
                "- sheet items, row 11, column item_department_code: unknown department code NOPE",
                "- sheet items, row 14, column area_departments: unknown department code NOPE2",
            ],
        ),
        (
            "duplicate.xlsx",
            [*rows[:20], dup, *rows[20:]],
            True,
            [f"- sheet items, row 22, column item_code: {dup[9]} repeats the item code of row 7"],
        ),
        (
            "empty.xlsx",
            _changed(
                (30, "filing_condition", None),
                (40, "time_limit", None),
                (60, "item_code", None),
            ),
            True,
            [
                "- sheet items, row 32, column filing_condition: empty",
                "- sheet items, row 42, column time_limit: empty, but row 39 (the subcategory's "
                "first row) has '8'",
                "- sheet items, row 62, column item_code: empty, but item_name, "
                "filing_condition, closing_condition, item_department_code",
            ],
        ),
        (
            "values.xlsx",
            _changed(
                (0, "time_limit", 0),
                (0, "urgency", "soon"),
                (1, "keywords", "别的"),
                (70, "item_time_unit", None),
                (80, "accept_hours", "abc"),
                (90, "area_departments", "44060401=GDJ"),
            ),
            True,
            [
                "- sheet items, row 2, column urgency: 'soon' is not one of normal, urgent, "
                "emergency",
                "- sheet items, row 2, column time_limit: 0 must be greater than 0",
                "- sheet items, row 3, column keywords: '别的' differs from",
                "- sheet items, row 72, column item_time_unit: empty, but item_time_limit is "
                "given (both or neither)",
                "- sheet items, row 82, column accept_hours: 'abc' is not a number",
                "- sheet items, row 92, column area_departments: area code '44060401' must be 9 "
                "or 12 digits",
            ],
        ),
        (
            "limits.xlsx",
            _changed((100, "accept_hours", 800), (101, "item_time_limit", 0)),
            True,
            [
                "- sheet items, row 102, column accept_hours: Input should be less than or "
                "equal to 720",
                "- sheet items, row 103, column item_time_limit: 0 must be greater than 0",
            ],
        ),
        (
            "latin1.csv",
            "类别".encode("gbk"),
            True,
            ["error: invalid_catalogue: latin1.csv: not UTF-8"],
        ),
        (
            "catalogue.txt",
            b"{}",
            True,
            ["error: invalid_catalogue: catalogue.txt: expected a .json"],
        ),
    ]
    before = _revision(own_db)
    for name, content, escalation, expected in cases:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            _write_book(path, content, escalation=escalation)
        res = _cli("taxonomy", "import", str(path))
        assert res.exit_code == 2, (name, res.output)
        assert "Traceback" not in res.output
        for line in expected:
            assert line in res.output, (name, res.output)
        if not isinstance(content, bytes):
            assert "catalogue import refused, nothing stored" in res.output, res.output
        assert _revision(own_db) == before, name
