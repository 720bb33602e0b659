"""Catalogues by stored revision: an open case keeps the catalogue it was routed by.

An import is a new revision and becomes the one in force for new cases; a case records the
revision it was registered under (`gg_case.catalogue_revision`), and its escalation ladder is
read from that revision, not from whatever was imported since. Stored revisions never change,
so each one is parsed once per process and kept (a few of them: districts import rarely).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import reader
from taxonomy.catalogue import Catalogue, load_default_catalogue, parse_catalogue
from taxonomy.models import CatalogueRevision

KEPT = 16


class RevisionCatalogues:
    """`get(revision)`: the catalogue stored as that revision (0: the packaged one). The one in
    force comes from `current` without a query; an older one is read once and kept."""

    def __init__(self, engine: Engine, *, current: Callable[[], Catalogue]) -> None:
        self._engine = engine
        self._current = current
        self._lock = threading.Lock()
        self._kept: OrderedDict[int, Catalogue] = OrderedDict()

    def get(self, revision: int) -> Catalogue:
        current = self._current()
        if revision == current.revision:
            return current
        if revision <= 0:
            return load_default_catalogue()
        with self._lock:
            found = self._kept.get(revision)
            if found is not None:
                self._kept.move_to_end(revision)
                return found
        with Session(reader(self._engine)) as session:
            row = session.get(CatalogueRevision, revision)
        # A revision that is not there (a database restored without it): the one in force
        # answers rather than none.
        catalogue = current if row is None else parse_catalogue(row.data).as_revision(revision)
        with self._lock:
            self._kept[revision] = catalogue
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return catalogue
