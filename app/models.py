"""Accounts: who may act, in which role, on which grids or for which department."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


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
