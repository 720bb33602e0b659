"""The classifier learns from people, on both databases: corrections by the command centre,
a district's past cases (CSV/XLSX, validated whole), models versioned in the database and
picked up by every process, retraining in the background by one scheduler at a time."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlmodel import Session

from app.cli import main
from core.clock import utcnow
from core.db import session_scope
from dispatch import learning
from taxonomy import learned
from taxonomy.catalogue import load_default_catalogue
from taxonomy.models import ClassifierExample, ClassifierModel
from tests.conftest import OwnApp, new_client_id

WORKER = "gw440604011001001"
GRID = "440604011001001"
CATALOGUE = load_default_catalogue()
# A district's own word for a problem: the shipped model cannot know it.
PHRASE = "祥记档口又喺度搞嗰样嘢，成条街都系"


@pytest.fixture(autouse=True)
def small_corpus(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Training in these tests sees four texts per subcategory of the shipped corpus (seconds,
    not the minute the whole corpus takes); what is learned from people is the same."""
    whole = learned.shipped_corpus

    def four_each(known: set[str]) -> list[learned.Example]:
        seen: dict[str, int] = {}
        out = []
        for e in whole(known):
            if seen.get(e.subcategory_code, 0) < 4:
                seen[e.subcategory_code] = seen.get(e.subcategory_code, 0) + 1
                out.append(e)
        return out

    monkeypatch.setattr(learned, "shipped_corpus", four_each)
    return


def _classify(own_app: OwnApp, text: str) -> dict[str, object]:
    res = own_app.api.post("dispatcher", "/v1/taxonomy/classify", {"text": text, "limit": 3})
    assert res.status_code == 200, res.text
    body: dict[str, object] = res.json()
    return body


def _report(own_app: OwnApp, point: Callable[[str], tuple[float, float]], text: str) -> int:
    lng, lat = point(GRID)
    own_app.api.clock.advance(seconds=1)
    res = own_app.api.post(
        WORKER,
        "/v1/reports",
        {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": text},
    )
    assert res.status_code == 201, res.text
    case_id: int = res.json()["id"]
    return case_id


def test_a_phrase_the_model_gets_wrong_is_learned_from_a_few_corrections(
    own_app: OwnApp, demo_points: Callable[[str], tuple[float, float]]
) -> None:
    before = _classify(own_app, PHRASE)
    assert str(before["model_version"]).startswith("packaged-")
    guessed = [c["subcategory_code"] for c in before["candidates"]]  # type: ignore[union-attr]
    target = next(s.code for _, s in CATALOGUE.iter_subcategories() if s.code not in guessed)
    # Three residents report it; the command centre registers each under what it really is.
    for _ in range(3):
        case_id = _report(own_app, demo_points, PHRASE)
        res = own_app.api.post(
            "dispatcher", f"/v1/cases/{case_id}/register", {"subcategory_code": target}
        )
        assert res.status_code == 200, res.text
    # Not enough for the scheduler's threshold of 5; enough for 3.
    engine = own_app.engine
    skipped = learning.retrain_if_due(engine, CATALOGUE, now=utcnow(), after=5)
    assert skipped.trained is None
    assert skipped.corrections == 3
    done = learning.retrain_if_due(engine, CATALOGUE, now=utcnow(), after=3)
    assert done.trained is not None
    assert done.trained["by_source"]["correction"] == 3
    after = _classify(own_app, PHRASE)
    assert after["model_version"] == done.trained["model_version"]
    assert after["candidates"][0]["subcategory_code"] == target  # type: ignore[index]
    # A new model means no correction is pending until people correct again.
    again = learning.retrain_if_due(engine, CATALOGUE, now=utcnow(), after=1)
    assert again.trained is None
    assert again.corrections == 0


def test_a_recategorize_is_a_correction_too(
    own_app: OwnApp, demo_points: Callable[[str], tuple[float, float]]
) -> None:
    case_id = _report(own_app, demo_points, "楼下间铺头成日开到好大声")
    assert own_app.api.post("dispatcher", f"/v1/cases/{case_id}/register", {}).status_code == 200
    with Session(own_app.engine) as session:
        assert (
            learning.corrections(session, {s.code for _, s in CATALOGUE.iter_subcategories()}) == []
        )
    res = own_app.api.post(
        "dispatcher",
        f"/v1/cases/{case_id}/recategorize",
        {"reason": "其实系商铺噪声", "subcategory_code": "0705"},
    )
    assert res.status_code == 200, res.text
    with Session(own_app.engine) as session:
        found = learning.corrections(session, {s.code for _, s in CATALOGUE.iter_subcategories()})
    assert [(e.subcategory_code, e.text, e.source) for e in found] == [
        ("0705", "楼下间铺头成日开到好大声", "correction")
    ]


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8-sig")
    return path


def _write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for r in rows:
            ws.append(r)
    book.save(path)
    return path


def _stored(own_app: OwnApp) -> int:
    with Session(own_app.engine) as session:
        return int(
            session.execute(select(func.count()).select_from(ClassifierExample)).scalar_one()
        )


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([["description", "subcategory_code"], ["路灯坏", "0802"]], "no column named text"),
        ([["text", "note"], ["路灯坏", "x"]], "needs a subcategory_code or category_code column"),
        (
            [["text", "subcategory_code"], ["路灯坏", "0802"], ["乜嘢", "9999"]],
            "row 3, column subcategory_code: unknown subcategory 9999",
        ),
        (
            [["text", "subcategory_code"], ["", "0802"]],
            "row 2, column text: empty",
        ),
        (
            [["text", "category_code", "subcategory_code"], ["路灯坏", "05", "0802"]],
            "row 2, column category_code: 05 is not the category of 0802",
        ),
        (
            [["text", "category_code"], ["有人赌钱", "99"]],
            "row 2, column category_code: unknown category 99",
        ),
    ],
)
def test_a_bad_history_file_is_refused_whole_naming_the_place(
    own_app: OwnApp, tmp_path: Path, rows: list[list[str]], problem: str
) -> None:
    for path in (
        _write_csv(tmp_path / "history.csv", rows),
        _write_xlsx(tmp_path / "history.xlsx", {"过往案件": rows}),
    ):
        result = CliRunner().invoke(main, ["classifier", "import-history", str(path)])
        assert result.exit_code == 2, result.output
        sheet = "history.csv" if path.suffix == ".csv" else "过往案件"
        assert problem in result.output
        assert f"sheet {sheet}" in result.output
        assert _stored(own_app) == 0


def test_a_history_file_that_is_not_a_table_is_refused(own_app: OwnApp, tmp_path: Path) -> None:
    fake = tmp_path / "history.xlsx"
    fake.write_bytes(b"PK\x03\x04 not really a workbook")
    result = CliRunner().invoke(main, ["classifier", "import-history", str(fake)])
    assert result.exit_code == 2
    assert "invalid_history" in result.output
    other = _write_xlsx(tmp_path / "h.xlsx", {"a": [["text", "subcategory_code"]]})
    result = CliRunner().invoke(main, ["classifier", "import-history", str(other), "--sheet", "b"])
    assert result.exit_code == 2
    assert "no sheet named 'b'" in result.output
    assert _stored(own_app) == 0


def test_past_cases_are_imported_and_learned_from(own_app: OwnApp, tmp_path: Path) -> None:
    csv_file = _write_csv(
        tmp_path / "past.csv",
        [
            ["text", "subcategory_code"],
            ["祥记档口又喺度搞嗰样嘢", "1101"],
            ["后巷啲渠又塞咗", "0805"],
        ],
    )
    result = CliRunner().invoke(main, ["classifier", "import-history", str(csv_file)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1]) == {"imported": 2, "examples_stored": 2}
    xlsx = _write_xlsx(
        tmp_path / "past.xlsx",
        {"2024": [["text", "category_code"], ["有人喺公园赌钱", "02"], [None, None]]},
    )
    result = CliRunner().invoke(main, ["classifier", "import-history", str(xlsx)])
    assert result.exit_code == 0, result.output
    with Session(own_app.engine) as session:
        rows = session.execute(
            select(ClassifierExample.subcategory_code, ClassifierExample.text).order_by(
                ClassifierExample.id
            )
        ).all()
    # A row with only a category is learned as the category's 其他 subcategory.
    assert [tuple(r) for r in rows][-1] == ("0208", "有人喺公园赌钱")
    result = CliRunner().invoke(main, ["classifier", "train"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["by_source"]["history"] == 3
    assert summary["held_out"]["n"] > 0
    assert _classify(own_app, "祥记档口又喺度搞嗰样嘢")["model_version"] == summary["model_version"]


def test_evaluate_measures_the_model_in_force(own_app: OwnApp, tmp_path: Path) -> None:
    tsv = tmp_path / "eval.tsv"
    tsv.write_text("08\t路灯坏咗成个礼拜\n0802\t街灯唔着\n13\t老板走佬冇出粮\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["classifier", "evaluate", str(tsv)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.splitlines()[-1])
    assert out["n"] == 3
    assert 0.0 <= out["top1"] <= out["top3"] <= 1.0
    assert out["subcategory"]["n"] == 1
    tsv.write_text("88\t乜嘢\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["classifier", "evaluate", str(tsv)])
    assert result.exit_code == 2
    assert "line 1: unknown code '88'" in result.output


@pytest.mark.parametrize("backend", ["postgis"], indirect=True)
def test_two_schedulers_train_once(
    own_app: OwnApp, demo_points: Callable[[str], tuple[float, float]]
) -> None:
    """Two processes' schedulers (threads with their own connections, released together) on one
    PostgreSQL: exactly one trains."""
    for _ in range(2):
        case_id = _report(own_app, demo_points, PHRASE)
        own_app.api.post(
            "dispatcher", f"/v1/cases/{case_id}/register", {"subcategory_code": "1101"}
        )
    results: list[learning.RetrainResult] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(learning.retrain_if_due(own_app.engine, CATALOGUE, now=utcnow(), after=2))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Session(own_app.engine) as session:
        models = session.execute(select(func.count()).select_from(ClassifierModel)).scalar_one()
    trained = [r for r in results if r.trained is not None]
    assert models == 1
    assert len(trained) == 1
    assert [r.skipped for r in results if r.trained is None] in (
        ["another process is training"],
        ["not enough corrections"],  # the other looked after the first had stored its model
    )


def test_only_the_newest_models_are_kept(own_app: OwnApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learning, "KEEP_MODELS", 2)
    versions = []
    for _ in range(3):
        with session_scope(own_app.engine) as session:
            versions.append(learning.train_and_store(session, CATALOGUE, now=utcnow()))
    with Session(own_app.engine) as session:
        kept = session.execute(select(ClassifierModel.id).order_by(ClassifierModel.id)).scalars()
        assert [str(i) for i in kept] == [v["model_version"] for v in versions[1:]]
    assert _classify(own_app, "路灯坏咗")["model_version"] == versions[-1]["model_version"]


def test_a_history_csv_that_is_not_utf8_or_too_long_is_refused(
    own_app: OwnApp, tmp_path: Path
) -> None:
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("text,subcategory_code\n路灯坏,0802\n".encode("gbk"))
    result = CliRunner().invoke(main, ["classifier", "import-history", str(gbk)])
    assert result.exit_code == 2
    assert "invalid_history" in result.output
    assert "not UTF-8" in result.output
    long = _write_csv(tmp_path / "long.csv", [["text", "subcategory_code"], ["路" * 4001, "0802"]])
    result = CliRunner().invoke(main, ["classifier", "import-history", str(long)])
    assert result.exit_code == 2
    assert "row 2, column text: longer than 4000 characters" in result.output
    assert _stored(own_app) == 0
