"""Account rules: creating users with the right place for their role."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from app.revocation import bump_auth_revision
from core.errors import (
    DepartmentRequired,
    GridRequired,
    InvalidCentreArea,
    InvalidDepartment,
    InvalidGrid,
    InvalidUsername,
    UnknownCentreArea,
    UnknownDepartment,
    UnknownGrid,
    UnknownUser,
    UsernameTaken,
    WeakPassword,
)
from core.models import Role, User, UserGrid
from core.security import hash_password
from dispatch.models import Department
from grid.models import Area, AreaLevel

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
MIN_PASSWORD_CHARS = 8


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    now: datetime,
    grid_codes: Iterable[str] = (),
    department_code: str | None = None,
    display_name: str = "",
    phone: str | None = None,
    password_hash: str | None = None,
    area_code: str | None = None,
) -> User:
    """A grid worker needs at least one existing grid, a department account its department."""
    if not _USERNAME.match(username):
        raise InvalidUsername()
    if password_hash is None and len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(min_chars=MIN_PASSWORD_CHARS)
    grids = sorted(set(grid_codes))
    if role is Role.GRID_WORKER and not grids:
        raise GridRequired()
    if role is not Role.GRID_WORKER and grids:
        raise InvalidGrid()
    if role is Role.DEPARTMENT and not department_code:
        raise DepartmentRequired()
    if role is not Role.DEPARTMENT and department_code:
        raise InvalidDepartment()
    if area_code is not None:
        _check_centre_area(session, role, area_code)
    if grids:
        known = set(
            session.execute(
                select(col(Area.code)).where(
                    col(Area.code).in_(grids), col(Area.level) == AreaLevel.GRID
                )
            ).scalars()
        )
        missing = [g for g in grids if g not in known]
        if missing:
            raise UnknownGrid(grids=", ".join(missing))
    if department_code is not None:
        dep = session.execute(
            select(col(Department.id)).where(col(Department.code) == department_code)
        ).first()
        if dep is None:
            raise UnknownDepartment(department=department_code)
    if (
        session.execute(select(col(User.id)).where(col(User.username) == username)).first()
        is not None
    ):
        raise UsernameTaken(username=username)
    user = User(
        username=username,
        display_name=display_name or username,
        phone=phone,
        password_hash=password_hash or hash_password(password),
        role=role,
        department_code=department_code,
        area_code=area_code,
        created_at=now,
    )
    session.add(user)
    session.flush()
    assert user.id is not None
    for code in grids:
        session.add(UserGrid(user_id=user.id, grid_code=code))
    session.flush()
    return user


def _check_centre_area(session: Session, role: Role, area_code: str) -> None:
    """A dispatcher's command centre: an existing, active 镇街 or 村居."""
    if role is not Role.DISPATCHER:
        raise InvalidCentreArea()
    found = session.execute(
        select(col(Area.code)).where(
            col(Area.code) == area_code,
            col(Area.level).in_([AreaLevel.TOWN, AreaLevel.VILLAGE]),
            col(Area.active).is_(True),
        )
    ).first()
    if found is None:
        raise UnknownCentreArea(area=area_code)


def _by_username(session: Session, username: str) -> User:
    user: User | None = session.execute(select(User).where(col(User.username) == username)).scalar()
    if user is None:
        raise UnknownUser(username=username)
    return user


def revoke_tokens(session: Session, *, username: str, now: datetime) -> User:
    """Sign the account out everywhere: every token issued before stops working in every
    process within `auth_refresh_seconds`."""
    user = _by_username(session, username)
    user.token_version += 1
    session.add(user)
    session.flush()
    bump_auth_revision(session, now=now)
    return user


def set_active(session: Session, *, username: str, active: bool, now: datetime) -> User:
    """A disabled account is refused at once everywhere; its tokens stay dead if re-enabled."""
    user = _by_username(session, username)
    user.active = active
    if not active:
        user.token_version += 1
    session.add(user)
    session.flush()
    bump_auth_revision(session, now=now)
    return user
