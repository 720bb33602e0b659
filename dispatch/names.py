"""The names a case answer shows beside its codes: status label, category, department, area path.

Looked up once per answer (one query for the departments and one for the areas of every case in
it), so a page of 50 cases costs two queries, not 200.
"""

from __future__ import annotations

from collections.abc import Iterable
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

# The contract's channel names; a command centre's report is stored as source `command_centre`.
CHANNEL_OF_SOURCE: dict[str, str] = {"command_centre": "dispatcher"}
SOURCE_OF_CHANNEL: dict[str, str] = {"grid_worker": "grid_worker", "dispatcher": "command_centre"}


def channel_of(source: str) -> str:
    return CHANNEL_OF_SOURCE.get(source, source)


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

    def department_name(self, code: str) -> str | None:
        return self.departments.get(code)

    def area_path(self, grid_code: str) -> list[AreaName]:
        """District → town → village → grid (codes nest by prefix)."""
        prefixes = (grid_code[:n] for n in sorted(CODE_LENGTH.values()))
        return [self.areas[p] for p in prefixes if p in self.areas]


def case_names(session: Session, cases: Iterable[Case], *, catalogue: Catalogue) -> CaseNames:
    cases = list(cases)
    department_codes = sorted({c.department_code for c in cases})
    area_codes = sorted(
        {c.grid_code[:n] for c in cases for n in CODE_LENGTH.values() if len(c.grid_code) >= n}
    )
    departments: dict[str, str] = {}
    areas: dict[str, AreaName] = {}
    if department_codes:
        rows = session.execute(
            select(col(Department.code), col(Department.name)).where(
                col(Department.code).in_(department_codes)
            )
        ).all()
        departments = {str(code): str(name) for code, name in rows}
    if area_codes:
        rows = session.execute(
            select(col(Area.code), col(Area.name), col(Area.level)).where(
                col(Area.code).in_(area_codes)
            )
        ).all()
        areas = {code: AreaName(code, name, level) for code, name, level in rows}
    return CaseNames(catalogue=catalogue, departments=departments, areas=areas)
