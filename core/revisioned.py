"""A per-process copy of something derived from the database, rebuilt when its revision moves.

Grids and the catalogue are read on every report but change rarely: each process keeps the
built object (spatial index, classifier) and, at most every `refresh_seconds`, reads one
revision number to learn whether another process changed them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import reader

T = TypeVar("T")


class RevisionedCache(Generic[T]):
    def __init__(
        self,
        engine: Engine,
        *,
        revision: Callable[[Session], Hashable],
        build: Callable[[Session, Hashable], T],
        refresh_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._revision = revision
        self._build = build
        self._refresh = refresh_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value: T | None = None
        self._built_revision: Hashable | None = None
        self._checked_at = -math.inf

    def get(self) -> T:
        now = self._monotonic()
        value = self._value
        if value is not None and now - self._checked_at < self._refresh:
            return value
        with self._lock:
            if self._value is not None and now - self._checked_at < self._refresh:
                return self._value
            with Session(reader(self._engine)) as session:
                revision = self._revision(session)
                if self._value is None or self._built_revision != revision:
                    self._value = self._build(session, revision)
                    self._built_revision = revision
            self._checked_at = now
            return self._value

    def invalidate(self) -> None:
        """Drop the copy: the next `get` rebuilds it."""
        with self._lock:
            self._value = None
            self._checked_at = -math.inf
