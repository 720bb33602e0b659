"""Account rules: creating users with the right place for their role."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from app.revocation import bump_auth_revision
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Role, User, UserGrid
from core.security import hash_password
from dispatch.models import Department
from grid.models import Area, AreaLevel

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")


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
) -> User:
    """A grid worker needs at least one existing grid, a department account its department."""
    if not _USERNAME.match(username):
        raise ValidationFailed(
            "username: 2-64 characters of letters, digits, _ . @ -", code="invalid_username"
        )
    if password_hash is None and len(password) < 8:
        raise ValidationFailed("password needs at least 8 characters", code="weak_password")
    grids = sorted(set(grid_codes))
    if role is Role.GRID_WORKER and not grids:
        raise ValidationFailed("a grid worker needs --grid", code="grid_required")
    if role is not Role.GRID_WORKER and grids:
        raise ValidationFailed("only grid workers have grids", code="invalid_grid")
    if role is Role.DEPARTMENT and not department_code:
        raise ValidationFailed(
            "a department account needs --department", code="department_required"
        )
    if role is not Role.DEPARTMENT and department_code:
        raise ValidationFailed(
            "only department accounts have a department", code="invalid_department"
        )
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
            raise ValidationFailed(f"unknown grid(s): {', '.join(missing)}", code="unknown_grid")
    if department_code is not None:
        dep = session.execute(
            select(col(Department.id)).where(col(Department.code) == department_code)
        ).first()
        if dep is None:
            raise ValidationFailed(
                f"unknown department {department_code!r}", code="unknown_department"
            )
    if (
        session.execute(select(col(User.id)).where(col(User.username) == username)).first()
        is not None
    ):
        raise Conflict(f"user {username!r} exists", code="username_taken")
    user = User(
        username=username,
        display_name=display_name or username,
        phone=phone,
        password_hash=password_hash or hash_password(password),
        role=role,
        department_code=department_code,
        created_at=now,
    )
    session.add(user)
    session.flush()
    assert user.id is not None
    for code in grids:
        session.add(UserGrid(user_id=user.id, grid_code=code))
    session.flush()
    return user


def _by_username(session: Session, username: str) -> User:
    user: User | None = session.execute(select(User).where(col(User.username) == username)).scalar()
    if user is None:
        raise NotFound(f"no user {username!r}", code="unknown_user")
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
