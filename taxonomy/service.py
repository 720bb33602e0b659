"""The catalogue in force: the newest imported revision, else the packaged default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app.errors import ValidationFailed
from app.revisioned import RevisionedCache
from taxonomy.catalogue import Catalogue, load_default_catalogue, parse_catalogue
from taxonomy.classifier import Candidate, Classifier
from taxonomy.models import CatalogueRevision


@dataclass(frozen=True)
class Taxonomy:
    revision: int
    catalogue: Catalogue
    classifier: Classifier


def latest_revision_id(session: Session) -> int:
    return int(session.execute(select(func.max(col(CatalogueRevision.id)))).scalar() or 0)


def load_taxonomy(session: Session) -> Taxonomy:
    rev = latest_revision_id(session)
    if rev == 0:
        catalogue = load_default_catalogue()
    else:
        row = session.get(CatalogueRevision, rev)
        assert row is not None
        catalogue = parse_catalogue(row.data)
    return Taxonomy(revision=rev, catalogue=catalogue, classifier=Classifier(catalogue))


def taxonomy_holder(engine: Engine, *, refresh_seconds: float) -> RevisionedCache[Taxonomy]:
    """This process's catalogue and classifier, rebuilt when a new revision is imported."""
    return RevisionedCache(
        engine,
        revision=latest_revision_id,
        build=lambda session, _rev: load_taxonomy(session),
        refresh_seconds=refresh_seconds,
    )


def import_catalogue(
    session: Session,
    data: Mapping[str, Any],
    *,
    now: datetime,
    known_departments: set[str],
    note: str = "",
) -> Catalogue:
    """Validate a whole catalogue and store it as the new revision (all or nothing)."""
    try:
        catalogue = parse_catalogue(data)
    except (ValueError, ValidationError) as exc:
        raise ValidationFailed(f"invalid catalogue: {exc}", code="invalid_catalogue") from None
    unknown = sorted(
        {s.department_code for _, s in catalogue.iter_subcategories()} - known_departments
    )
    if unknown:
        raise ValidationFailed(
            "invalid catalogue: unknown department codes " + ", ".join(unknown),
            code="invalid_catalogue",
        )
    session.add(
        CatalogueRevision(data=catalogue.model_dump(mode="json"), note=note, created_at=now)
    )
    session.flush()
    return catalogue


def classify_within(
    classifier: Classifier, text: str, *, category_code: str | None, limit: int = 5
) -> list[Candidate]:
    """Candidates, best first; restricted to one category when the reporter named it."""
    if category_code is None:
        return classifier.classify(text, limit=limit)
    pool = classifier.classify(text, limit=10_000)
    return [c for c in pool if c.category_code == category_code][:limit]
