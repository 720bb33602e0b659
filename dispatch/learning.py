"""The classifier learns from people: the command centre's corrections (a `recategorize`, or a
`register` that changed the subcategory) and a district's past cases, with the shipped corpus.

`train_and_store` fits a model and stores it as the next version (`classifier_model`); every
process picks it up at its next catalogue check (taxonomy.service). `retrain_if_due` is the
scheduler's: once enough corrections came in since the newest model, one process (the one that
claims the training lease) trains again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, delete, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from core.db import reader, session_scope
from core.errors import InvalidHistory
from dispatch.models import Case, CaseHistory
from taxonomy import learned
from taxonomy.catalogue import Catalogue
from taxonomy.models import ClassifierExample, ClassifierModel, ClassifierTraining
from taxonomy.sheets import Table

# A history row that says a person changed the subcategory the case came in with.
_CORRECTING = ("register", "recategorize")


def _corrected(since: datetime | None) -> Any:
    query = select(col(CaseHistory.case_id)).where(
        col(CaseHistory.action).in_(_CORRECTING),
        cast(CaseHistory.data, String).like('%"subcategory_from"%'),
    )
    if since is not None:
        query = query.where(col(CaseHistory.at) > since)
    return query


def corrections(session: Session, known: set[str]) -> list[learned.Example]:
    """(description, the subcategory people settled on) of every case a person re-classified."""
    ids = _corrected(None).distinct().subquery()
    rows = session.execute(
        select(col(Case.subcategory_code), col(Case.description)).where(
            col(Case.id).in_(select(ids.c.case_id))
        )
    ).all()
    return [
        learned.Example(code, text, "correction")
        for code, text in rows
        if code in known and text and text.strip()
    ]


def corrections_since(session: Session, since: datetime | None) -> int:
    sub = _corrected(since).subquery()
    return int(session.execute(select(func.count()).select_from(sub)).scalar_one())


def imported(session: Session, known: set[str]) -> list[learned.Example]:
    rows = session.execute(
        select(col(ClassifierExample.subcategory_code), col(ClassifierExample.text))
    ).all()
    return [learned.Example(code, text, "history") for code, text in rows if code in known]


def training_set(
    session: Session, catalogue: Catalogue
) -> tuple[list[learned.Example], list[learned.Example]]:
    """(what the model learns from, the corpus's held-out third it is measured on)."""
    known = {sub.code for _, sub in catalogue.iter_subcategories()}
    train, test = learned.corpus_split(catalogue)
    return train + imported(session, known) + corrections(session, known), test


def train_and_store(session: Session, catalogue: Catalogue, *, now: datetime) -> dict[str, Any]:
    """Train on corpus + catalogue + imported history + corrections; store the model as the
    next version; its summary (what it learned from, how it did on the held-out third)."""
    train, test = training_set(session, catalogue)
    started = time.perf_counter()
    model = learned.train(train)
    seconds = round(time.perf_counter() - started, 1)
    held_out = learned.evaluate(model, catalogue, test) if test else None
    model.meta.update(held_out=held_out, train_seconds=seconds)
    row = ClassifierModel(created_at=now, meta=model.meta, data=model.to_bytes())
    session.add(row)
    session.flush()
    assert row.id is not None
    # Older models are dropped past the newest KEEP_MODELS (a few MB each; the scheduler may
    # train one per 20 corrections).
    session.execute(delete(ClassifierModel).where(col(ClassifierModel.id) <= row.id - KEEP_MODELS))
    return {"model_version": str(row.id), **model.meta, "bytes": len(row.data)}


KEEP_MODELS = 10


@dataclass(frozen=True)
class RetrainResult:
    trained: dict[str, Any] | None = None
    corrections: int = 0
    skipped: str | None = None  # why nothing was trained


LEASE = timedelta(minutes=30)


def retrain_if_due(
    engine: Engine, catalogue: Catalogue, *, now: datetime, after: int
) -> RetrainResult:
    """Train again when at least `after` corrections came in since the newest model (0: never);
    one process at a time (the training lease), the others skip."""
    if after <= 0:
        return RetrainResult(skipped="off")
    with session_scope(reader(engine)) as session:
        newest = session.execute(select(func.max(col(ClassifierModel.created_at)))).scalar()
        count = corrections_since(session, newest)
    if count < after:
        return RetrainResult(corrections=count, skipped="not enough corrections")
    with session_scope(engine) as session:
        if not _claim(session, now):
            return RetrainResult(corrections=count, skipped="another process is training")
    try:
        with session_scope(engine) as session:
            summary = train_and_store(session, catalogue, now=now)
    finally:
        with session_scope(engine) as session:
            session.execute(
                update(ClassifierTraining)
                .where(col(ClassifierTraining.id) == 1)
                .values(lease_until=now)
            )
    return RetrainResult(trained=summary, corrections=count)


def _claim(session: Session, now: datetime) -> bool:
    claimed = session.execute(
        update(ClassifierTraining)
        .where(col(ClassifierTraining.id) == 1, col(ClassifierTraining.lease_until) <= now)
        .values(lease_until=now + LEASE)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


MAX_TEXT = 4000


def parse_history(table: Table, catalogue: Catalogue) -> list[learned.Example]:
    """The rows of a past-cases sheet: `text` and `subcategory_code` or `category_code` (a row
    with only a category is learned as that category's "其他…" subcategory: the category level
    learns it, the subcategory level is not misled by a guess). Validated whole: every problem
    names the sheet, row and column; any problem refuses the file."""
    columns = set(table.header)
    problems: list[str] = []
    if "text" not in columns:
        problems.append(f"sheet {table.sheet}: no column named text")
    if not columns & {"subcategory_code", "category_code"}:
        problems.append(f"sheet {table.sheet}: needs a subcategory_code or category_code column")
    if problems:
        raise InvalidHistory(problems=problems)
    fallback = {
        cat.code: next((s.code for s in cat.subcategories if s.is_catch_all), None)
        for cat in catalogue.categories
    }
    out: list[learned.Example] = []
    for number, row in table.rows:
        where = f"sheet {table.sheet}, row {number}"
        text = row.get("text", "").strip()
        sub_code = row.get("subcategory_code", "").strip()
        cat_code = row.get("category_code", "").strip()
        if not text:
            problems.append(f"{where}, column text: empty")
        elif len(text) > MAX_TEXT:
            problems.append(f"{where}, column text: longer than {MAX_TEXT} characters")
        label = None
        if sub_code:
            sub = catalogue.subcategory(sub_code)
            if sub is None:
                problems.append(f"{where}, column subcategory_code: unknown subcategory {sub_code}")
            elif cat_code and cat_code != sub_code[:2]:
                problems.append(
                    f"{where}, column category_code: {cat_code} is not the category of {sub_code}"
                )
            else:
                label = sub.code
        elif cat_code:
            if catalogue.category(cat_code) is None:
                problems.append(f"{where}, column category_code: unknown category {cat_code}")
            else:
                label = fallback.get(cat_code)
                if label is None:
                    problems.append(
                        f"{where}, column subcategory_code: empty, and category {cat_code} has "
                        "no 其他 subcategory to learn it as"
                    )
        else:
            problems.append(f"{where}, column subcategory_code: empty (and no category_code)")
        if label is not None and text:
            out.append(learned.Example(label, text, "history"))
    if problems:
        raise InvalidHistory(problems=problems)
    if not out:
        raise InvalidHistory(problems=[f"sheet {table.sheet}: no rows"])
    return out


def import_history(
    session: Session, examples: Sequence[learned.Example], *, now: datetime
) -> dict[str, Any]:
    """Store the past cases for the next training (all in one transaction)."""
    session.add_all(
        ClassifierExample(
            subcategory_code=e.subcategory_code, text=e.text, source="history", imported_at=now
        )
        for e in examples
    )
    session.flush()
    total = session.execute(select(func.count()).select_from(ClassifierExample)).scalar_one()
    return {"imported": len(examples), "examples_stored": int(total)}
