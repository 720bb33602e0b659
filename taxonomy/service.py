"""The catalogue in force: the newest imported revision, else the packaged default."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app.db import reader
from app.errors import ValidationFailed
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


class TaxonomyHolder:
    """This process's catalogue and classifier; re-checks the revision every `refresh_seconds`."""

    def __init__(
        self,
        engine: Engine,
        *,
        refresh_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._refresh = refresh_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._current: Taxonomy | None = None
        self._checked_at = -math.inf

    def get(self) -> Taxonomy:
        now = self._monotonic()
        if self._current is not None and now - self._checked_at < self._refresh:
            return self._current
        with self._lock, Session(reader(self._engine)) as session:
            rev = latest_revision_id(session)
            if self._current is None or self._current.revision != rev:
                self._current = load_taxonomy(session)
            self._checked_at = now
            return self._current

    def invalidate(self) -> None:
        with self._lock:
            self._checked_at = -math.inf


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
