"""The catalogue in force: the newest imported revision, else the packaged default."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from core.errors import InvalidCatalogue
from core.revisioned import RevisionedCache
from taxonomy.catalogue import Catalogue, describe_location, load_default_catalogue, parse_catalogue
from taxonomy.classifier import Candidate, Classifier
from taxonomy.learned import LearnedClassifier, Model, packaged_model
from taxonomy.models import CatalogueRevision, ClassifierModel


class Suggester(Protocol):
    """What intake and the classify endpoint ask: ranked candidates (and whether the best is
    unclear), never raising. The learned classifier, or the keyword one it replaced."""

    def classify(self, text: str, *, limit: int = 5) -> list[Candidate]: ...

    def answer(self, text: str, *, limit: int = 5) -> tuple[list[Candidate], bool]: ...


@dataclass(frozen=True)
class Taxonomy:
    revision: int
    catalogue: Catalogue
    classifier: Suggester
    model_version: str = "keywords"

    def answer(self, text: str, *, limit: int = 5) -> tuple[list[Candidate], bool]:
        """Candidates and whether the best is unclear."""
        return self.classifier.answer(text, limit=limit)


def latest_revision_id(session: Session) -> int:
    return int(session.execute(select(func.max(col(CatalogueRevision.id)))).scalar() or 0)


def latest_model_id(session: Session) -> int:
    return int(session.execute(select(func.max(col(ClassifierModel.id)))).scalar() or 0)


def _revisions(session: Session) -> tuple[int, int]:
    return latest_revision_id(session), latest_model_id(session)


def load_taxonomy(session: Session) -> Taxonomy:
    """The newest catalogue and the newest trained model (else the packaged one, else the
    keyword classifier)."""
    rev = latest_revision_id(session)
    if rev == 0:
        catalogue = load_default_catalogue()
    else:
        row = session.get(CatalogueRevision, rev)
        assert row is not None
        catalogue = parse_catalogue(row.data).as_revision(rev)
    model_id = latest_model_id(session)
    model, version = None, "keywords"
    if model_id:
        stored = session.get(ClassifierModel, model_id)
        assert stored is not None
        model, version = Model.from_bytes(stored.data), str(model_id)
    else:
        model = packaged_model()
        if model is not None:
            version = f"packaged-{model.version_tag}"
    if model is None:
        return Taxonomy(revision=rev, catalogue=catalogue, classifier=Classifier(catalogue))
    return Taxonomy(
        revision=rev,
        catalogue=catalogue,
        classifier=LearnedClassifier(model, catalogue, version=version),
        model_version=version,
    )


def taxonomy_holder(engine: Engine, *, refresh_seconds: float) -> RevisionedCache[Taxonomy]:
    """This process's catalogue and classifier, rebuilt when a new catalogue revision is
    imported or a new model trained (by any process)."""
    return RevisionedCache(
        engine,
        revision=_revisions,
        build=lambda session, _rev: load_taxonomy(session),
        refresh_seconds=refresh_seconds,
    )


Location = tuple[int | str, ...]


def import_catalogue(
    session: Session,
    data: Mapping[str, Any],
    *,
    now: datetime,
    known_departments: set[str],
    cases_in_use: Mapping[tuple[str, str], int],
    note: str = "",
    locate: Callable[[Location], str] | None = None,
    problems: Sequence[str] = (),
) -> Catalogue:
    """Validate a whole catalogue and store it as the new revision (all or nothing).

    `cases_in_use`: open cases by (category code, subcategory code); a catalogue that drops a
    code some open case still carries is refused, naming the codes and how many cases.
    `locate`: where a place in the document came from (a spreadsheet's sheet, row and
    column), so every problem names it; without it a problem names its path in the JSON.
    `problems`: those the reader of the file already found; any refuses the import too.
    """
    found = list(problems)
    catalogue: Catalogue | None = None
    if not isinstance(data, Mapping):
        raise InvalidCatalogue(problems=[f"catalogue must be an object, not {type(data).__name__}"])
    try:
        catalogue = Catalogue.model_validate(dict(data))
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            where = locate(loc) if locate is not None else describe_location(data, loc)
            found.append(f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
    found += unknown_departments(data, known_departments, locate)
    if catalogue is not None:
        found += dropped_in_use(load_taxonomy(session).catalogue, catalogue, cases_in_use)
    if found or catalogue is None:
        raise InvalidCatalogue(problems=found or ["invalid catalogue"])
    session.add(
        CatalogueRevision(data=catalogue.model_dump(mode="json"), note=note, created_at=now)
    )
    session.flush()
    return catalogue


def unknown_departments(
    data: Mapping[str, Any], known: set[str], locate: Callable[[Location], str] | None
) -> list[str]:
    """Units the document names that do not exist: each code once, or with `locate` each
    place naming one. Read from the document rather than the parsed catalogue, so they are
    reported along with the schema's problems."""
    named: list[tuple[Location, object]] = []
    for i, cat in _entries(data, "categories"):
        for j, sub in _entries(cat, "subcategories"):
            at: Location = ("categories", i, "subcategories", j)
            named.append(((*at, "department_code"), sub.get("department_code")))
            for k, item in _entries(sub, "items"):
                on: Location = (*at, "items", k)
                named.append(((*on, "department_code"), item.get("department_code")))
                for n, area in _entries(item, "area_departments"):
                    named.append(
                        (
                            (*on, "area_departments", n, "department_code"),
                            area.get("department_code"),
                        )
                    )
    unknown = [
        (loc, code.strip())
        for loc, code in named
        if isinstance(code, str) and code.strip() and code.strip() not in known
    ]
    if locate is None:
        return [f"unknown department code {code}" for code in sorted({c for _, c in unknown})]
    return [f"{locate(loc)}: unknown department code {code}" for loc, code in unknown]


def _entries(node: Any, key: str) -> list[tuple[int, Mapping[str, Any]]]:
    """The objects of a list in a document not yet validated (anything else is skipped)."""
    value = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(value, list | tuple):
        return []
    return [(n, v) for n, v in enumerate(value) if isinstance(v, Mapping)]


def dropped_in_use(
    current: Catalogue, new: Catalogue, cases_in_use: Mapping[tuple[str, str], int]
) -> list[str]:
    """Categories and subcategories that `new` drops although open cases still use them."""
    by_category: dict[str, dict[str, int]] = {}
    for (cat_code, sub_code), count in cases_in_use.items():
        if count > 0:
            by_category.setdefault(cat_code, {})[sub_code] = count
    problems = []
    for cat_code, subs in sorted(by_category.items()):
        if new.category(cat_code) is None:
            total = sum(subs.values())
            cat = current.category(cat_code)
            problems.append(
                f"category {cat_code}{_label(cat.name if cat else None)} is dropped but still "
                f"used by {_cases(total)} (subcategories {', '.join(sorted(subs))})"
            )
            continue
        for sub_code, count in sorted(subs.items()):
            if new.subcategory(sub_code) is None:
                sub = current.subcategory(sub_code)
                problems.append(
                    f"subcategory {sub_code}{_label(sub.name if sub else None)} is dropped but "
                    f"still used by {_cases(count)}"
                )
    return problems


def _label(name: str | None) -> str:
    return f" ({name})" if name else ""


def _cases(count: int) -> str:
    return "1 open case" if count == 1 else f"{count} open cases"


def classify_within(
    classifier: Suggester, text: str, *, category_code: str | None, limit: int = 5
) -> list[Candidate]:
    """Candidates, best first; restricted to one category when the reporter named it."""
    if category_code is None:
        return classifier.classify(text, limit=limit)
    pool = classifier.classify(text, limit=10_000)
    return [c for c in pool if c.category_code == category_code][:limit]
