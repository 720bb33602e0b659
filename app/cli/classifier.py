"""`gridgov classifier`: train the learned classifier, measure it, feed it a district's past
cases. (The scheduler inside `serve` retrains by itself once enough corrections came in.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.cli.base import engine_from_settings, fail
from core.clock import utcnow
from core.db import session_scope
from core.errors import GridgovError


@click.group()
def classifier() -> None:
    """The learned classifier."""


@classifier.command("train")
@click.option(
    "--package",
    "package",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the model built from the shipped corpus and the default catalogue to this file"
    " (how taxonomy/data/model.npz is made) instead of storing one in the database",
)
def classifier_train(package: Path | None) -> None:
    """Train on the shipped corpus (its held-out third excepted), the catalogue's names and
    keywords, the imported past cases and the command centre's corrections; store the model as
    the next version (every process answers with it within GRIDGOV_GRID_REFRESH_SECONDS).
    Prints a JSON summary on the last line, with top-1/top-3 on the held-out third."""
    from app.migrate import upgrade
    from dispatch import learning
    from taxonomy import learned
    from taxonomy import service as taxonomy_service
    from taxonomy.catalogue import load_default_catalogue

    if package is not None:
        catalogue = load_default_catalogue()
        train, test = learned.corpus_split(catalogue)
        model = learned.train(train)
        model.meta.update(held_out=learned.evaluate(model, catalogue, test) if test else None)
        data = model.to_bytes()
        package.write_bytes(data)
        click.echo(json.dumps({"written": str(package), "bytes": len(data), **model.meta}))
        return
    engine = engine_from_settings()
    upgrade(engine)
    with session_scope(engine) as session:
        catalogue = taxonomy_service.load_taxonomy(session).catalogue
        summary = learning.train_and_store(session, catalogue, now=utcnow())
    click.echo(json.dumps(summary, ensure_ascii=False))


@classifier.command("evaluate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def classifier_evaluate(file: Path) -> None:
    """Measure the model in force on a TSV of `label<TAB>text` (label: a category or a
    subcategory code): JSON with top1, top3 and n (per level when labels are subcategories)."""
    from taxonomy import service as taxonomy_service

    with session_scope(engine_from_settings()) as session:
        taxonomy = taxonomy_service.load_taxonomy(session)
    lines = file.read_text("utf-8").splitlines()
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        label, tab, text = line.partition("\t")
        if not tab or not text.strip():
            click.echo(f"error: line {number}: expected LABEL<TAB>TEXT", err=True)
            sys.exit(2)
        valid = (
            taxonomy.catalogue.category(label)
            if len(label) == 2
            else taxonomy.catalogue.subcategory(label)
        )
        if valid is None:
            click.echo(f"error: line {number}: unknown code {label!r}", err=True)
            sys.exit(2)
        pairs.append((label, text))
    if not pairs:
        click.echo("error: no lines to evaluate", err=True)
        sys.exit(2)
    top1 = top3 = 0
    sub_top1 = sub_top3 = subs = 0
    for label, text in pairs:
        candidates, _ = taxonomy.answer(text, limit=50)
        categories = list(dict.fromkeys(c.category_code for c in candidates))
        top1 += categories[:1] == [label[:2]]
        top3 += label[:2] in categories[:3]
        if len(label) == 4:
            subs += 1
            codes = [c.subcategory_code for c in candidates]
            sub_top1 += codes[:1] == [label]
            sub_top3 += label in codes[:3]
    n = len(pairs)
    out: dict[str, object] = {
        "model_version": taxonomy.model_version,
        "n": n,
        "top1": round(top1 / n, 4),
        "top3": round(top3 / n, 4),
    }
    if subs:
        out["subcategory"] = {
            "n": subs,
            "top1": round(sub_top1 / subs, 4),
            "top3": round(sub_top3 / subs, 4),
        }
    click.echo(json.dumps(out))


@classifier.command("import-history")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sheet", default=None, help="XLSX: the sheet to read (default: the first)")
def classifier_import_history(file: Path, sheet: str | None) -> None:
    """Load a district's past cases (CSV or XLSX: `text` and `subcategory_code` or
    `category_code`) for the next training. Validated whole: a problem names the sheet, row
    and column, and nothing is stored."""
    from app.migrate import upgrade
    from dispatch import learning
    from taxonomy import service as taxonomy_service
    from taxonomy.sheets import UnreadableFile, read_table

    try:
        table = read_table(file, sheet=sheet)
    except UnreadableFile as exc:
        click.echo(f"error: invalid_history: {exc}", err=True)
        sys.exit(2)
    engine = engine_from_settings()
    upgrade(engine)
    try:
        with session_scope(engine) as session:
            catalogue = taxonomy_service.load_taxonomy(session).catalogue
            examples = learning.parse_history(table, catalogue)
            result = learning.import_history(session, examples, now=utcnow())
    except GridgovError as exc:
        fail(exc)
    click.echo(json.dumps(result))
