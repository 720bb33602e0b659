"""The catalogue in force: the newest imported revision, else the packaged default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from core.errors import InvalidCatalogue
from core.revisioned import RevisionedCache
from taxonomy.catalogue import Catalogue, load_default_catalogue, parse_catalogue
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
        catalogue = parse_catalogue(row.data)
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


def import_catalogue(
    session: Session,
    data: Mapping[str, Any],
    *,
    now: datetime,
    known_departments: set[str],
    cases_in_use: Mapping[tuple[str, str], int],
    note: str = "",
) -> Catalogue:
    """Validate a whole catalogue and store it as the new revision (all or nothing).

    `cases_in_use`: open cases by (category code, subcategory code); a catalogue that drops a
    code some open case still carries is refused, naming the codes and how many cases.
    """
    try:
        catalogue = parse_catalogue(data)
    except (ValueError, ValidationError) as exc:
        lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        raise InvalidCatalogue(problems=lines or [str(exc)]) from None
    problems = [
        f"unknown department code {code}"
        for code in sorted(
            set().union(*(s.departments() for _, s in catalogue.iter_subcategories()))
            - known_departments
        )
    ]
    problems += dropped_in_use(load_taxonomy(session).catalogue, catalogue, cases_in_use)
    if problems:
        raise InvalidCatalogue(problems=problems)
    session.add(
        CatalogueRevision(data=catalogue.model_dump(mode="json"), note=note, created_at=now)
    )
    session.flush()
    return catalogue


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
