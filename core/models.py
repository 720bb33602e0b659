"""Accounts: who may act, in which role, on which grids or for which department."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, String
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class Role(StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    GRID_WORKER = "grid_worker"
    DEPARTMENT = "department"


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(default="", max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)
    department_code: str | None = Field(
        default=None,
        sa_column=Column(String(16), ForeignKey("department.code"), nullable=True, index=True),
    )
    # A dispatcher's command centre: a 镇街 or 村居 code (None: district-wide).
    area_code: str | None = Field(
        default=None, sa_column=Column(String(15), ForeignKey("area.code"), nullable=True)
    )
    active: bool = Field(default=True)
    # Bumped to revoke every token issued before.
    token_version: int = Field(default=0)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class UserGrid(SQLModel, table=True):
    """A grid worker's grids (一格一员, but one worker may cover several)."""

    __tablename__ = "user_grid"

    user_id: int = Field(
        sa_column=Column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    )
    grid_code: str = Field(
        sa_column=Column(String(15), ForeignKey("area.code"), primary_key=True, index=True)
    )


class AuthRevision(SQLModel, table=True):
    """One counter bumped by every revocation (logout, disabled account, token version), so
    each process drops its cached accounts and reloads the revoked tokens within a second."""

    __tablename__ = "auth_revision"

    id: int = Field(default=1, primary_key=True)
    revision: int = Field(default=0)
    changed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class RevokedToken(SQLModel, table=True):
    """A bearer token refused before its expiry (logout); the row can go once it has expired."""

    __tablename__ = "revoked_token"

    jti: str = Field(sa_column=Column(String(64), primary_key=True))
    user_id: int = Field(
        sa_column=Column(ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    revoked_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LoginOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    # Refused without checking the password: too many recent failures.
    LOCKED = "locked"


class LoginAttempt(SQLModel, table=True):
    """Every password login, shared by all processes: failures in the window lock a username
    (or an address) out."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_username_at", "username", "at"),
        Index("ix_login_attempt_address_at", "address", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    address: str = Field(max_length=64)
    outcome: str = Field(max_length=16)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
