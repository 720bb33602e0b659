"""The names a case answer shows beside its codes: status label, category, department, area path.

Names come from a per-process cache of the database's departments and areas (`NameCache`), so
a page of 50 cases, or a report's answer, costs no query for them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session, col

from dispatch.models import Case, CaseStatus, Department
from grid.models import CODE_LENGTH, Area
from taxonomy.catalogue import Catalogue

STATUS_LABELS: dict[str, str] = {
    CaseStatus.REPORTED: "待受理",
    CaseStatus.REGISTERED: "已立案",
    CaseStatus.DISPATCHED: "已派遣",
    CaseStatus.ACCEPTED: "处置中",
    CaseStatus.SUSPENDED: "已挂起",
    CaseStatus.RESOLVED: "已反馈",
    CaseStatus.VERIFIED: "已核查",
    CaseStatus.CLOSED: "已结案",
    CaseStatus.REJECTED: "不予立案",
    CaseStatus.MERGED: "已并单",
}


@dataclass(frozen=True)
class AreaName:
    code: str
    name: str
    level: str


@dataclass(frozen=True)
class CaseNames:
    """Names for the codes of some cases; a code missing here is answered without a name."""

    catalogue: Catalogue
    departments: dict[str, str] = field(default_factory=dict)
    areas: dict[str, AreaName] = field(default_factory=dict)

    def category_name(self, code: str) -> str | None:
        category = self.catalogue.category(code)
        return None if category is None else category.name

    def subcategory_name(self, code: str) -> str | None:
        sub = self.catalogue.subcategory(code)
        return None if sub is None else sub.name

    def item_name(self, subcategory_code: str, item_code: str | None) -> str | None:
        sub = self.catalogue.subcategory(subcategory_code)
        item = None if sub is None or item_code is None else sub.item(item_code)
        return None if item is None else item.name

    def department_name(self, code: str) -> str | None:
        return self.departments.get(code)

    def area_path(self, grid_code: str) -> list[AreaName]:
        """District → town → village → grid (codes nest by prefix)."""
        prefixes = (grid_code[:n] for n in sorted(CODE_LENGTH.values()))
        return [self.areas[p] for p in prefixes if p in self.areas]


class NameCache:
    """Department and area names of one database, kept by a process: they change rarely (a grid
    import, a renamed unit), so an answer reads none. Reloaded whole every `ttl` seconds, or
    sooner when a code is missing (a new area), at most every `miss_reload` seconds. Names are
    for display only: a rename shows within `ttl`.
    """

    def __init__(
        self,
        *,
        ttl: float = 60.0,
        miss_reload: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._miss_reload = miss_reload
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._loaded_at = -math.inf
        self._departments: dict[str, str] = {}
        self._areas: dict[str, AreaName] = {}

    def _load(self, session: Session) -> None:
        departments = session.execute(select(col(Department.code), col(Department.name))).all()
        areas = session.execute(select(col(Area.code), col(Area.name), col(Area.level))).all()
        self._departments = {str(code): str(name) for code, name in departments}
        self._areas = {code: AreaName(code, name, level) for code, name, level in areas}
        self._loaded_at = self._monotonic()

    def lookup(
        self, session: Session, departments: set[str], areas: set[str]
    ) -> tuple[dict[str, str], dict[str, AreaName]]:
        with self._lock:
            age = self._monotonic() - self._loaded_at
            missing = not departments <= self._departments.keys() or not areas <= self._areas.keys()
            if age >= self._ttl or (missing and age >= self._miss_reload):
                self._load(session)
            return (
                {c: self._departments[c] for c in departments if c in self._departments},
                {c: self._areas[c] for c in areas if c in self._areas},
            )


_caches: dict[str, NameCache] = {}
_caches_lock = threading.Lock()


def name_cache(session: Session) -> NameCache:
    """The process's cache for the database this session talks to."""
    key = session.get_bind().engine.url.render_as_string(hide_password=True)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = _caches[key] = NameCache()
        return cache


def case_names(session: Session, cases: Iterable[Case], *, catalogue: Catalogue) -> CaseNames:
    cases = list(cases)
    department_codes = {c.department_code for c in cases}
    area_codes = {
        c.grid_code[:n] for c in cases for n in CODE_LENGTH.values() if len(c.grid_code) >= n
    }
    if not cases:
        return CaseNames(catalogue=catalogue)
    departments, areas = name_cache(session).lookup(session, department_codes, area_codes)
    return CaseNames(catalogue=catalogue, departments=departments, areas=areas)
