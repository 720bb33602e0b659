"""The demo district: 禅城 (real outline), 4 镇街, 139 村居, 921 micro-grids, units and accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from app.users import create_user
from core.models import Role
from core.security import hash_password
from dispatch.models import Department
from grid import service as grid_service
from grid.demo_district import build_chancheng
from grid.models import Area

DEMO_PASSWORD = "gridgov-demo"


@dataclass(frozen=True)
class SeedResult:
    areas: int
    grids: int
    departments: int
    users: int


def is_seeded(session: Session) -> bool:
    return bool(session.execute(select(func.count()).select_from(Area)).scalar())


def seed(session: Session, *, now: datetime) -> SeedResult:
    """Seed an empty database; refuses to mix the demo into one that already has areas."""
    if is_seeded(session):
        raise RuntimeError("the database already has areas; demo seed is for an empty database")
    district = build_chancheng()
    areas = [district.district, *district.towns, *district.villages, *district.grids]
    grid_service.upsert_areas(
        session,
        (grid_service.AreaIn(code=a.code, name=a.name, geometry=a.geometry) for a in areas),
        now=now,
    )
    departments = len(session.execute(select(col(Department.id))).all())
    shared_hash = hash_password(DEMO_PASSWORD)  # one hash for ~950 demo accounts
    users = 0
    for username, role, display in (
        ("admin", Role.ADMIN, "系统管理员"),
        ("dispatcher", Role.DISPATCHER, "指挥中心调度员"),
    ):
        create_user(
            session,
            username=username,
            password=DEMO_PASSWORD,
            password_hash=shared_hash,
            role=role,
            display_name=display,
            now=now,
        )
        users += 1
    for dep in session.execute(select(Department).order_by(col(Department.code))).scalars():
        create_user(
            session,
            username=f"dept-{dep.code.lower()}",
            password=DEMO_PASSWORD,
            password_hash=shared_hash,
            role=Role.DEPARTMENT,
            department_code=dep.code,
            display_name=f"{dep.short_name}值班员",
            now=now,
        )
        users += 1
    for grid in district.grids:
        create_user(
            session,
            username=f"gw{grid.code}",
            password=DEMO_PASSWORD,
            password_hash=shared_hash,
            role=Role.GRID_WORKER,
            grid_codes=[grid.code],
            display_name=f"{grid.name}网格员",
            now=now,
        )
        users += 1
    return SeedResult(
        areas=len(areas), grids=len(district.grids), departments=departments, users=users
    )
