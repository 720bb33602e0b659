"""Warnings (预警) in the database, and the claims that make each scan run once."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class WarningKind(StrEnum):
    CLUSTER = "cluster"  # a space-time cluster (scan statistic)
    SPIKE = "spike"  # one grid's count of a category far above its own baseline


class WarningStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"  # a command centre has seen it (with a note)
    CLOSED = "closed"


class EarlyWarning(SQLModel, table=True):
    """A warning: where (centre and radius, WGS-84; the area holding the centre), when (the
    window of days), how many cases against how many expected, how sure (p-value, recurrence
    interval), and which cases. A warning that persists is updated by the next scans, not
    raised again."""

    __tablename__ = "early_warning"
    __table_args__ = (Index("ix_early_warning_status_kind", "status", "kind", "category_code"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    category_code: str = Field(max_length=2)
    subcategory_code: str | None = Field(default=None, max_length=8)
    # The grid holding most of its cases (a spike: its grid): the warning goes to the command
    # centres (and subscriptions) of its village, town and district.
    area_code: str = Field(max_length=15, index=True)
    center_lat: float
    center_lng: float
    radius_m: float
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    window_end: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    observed: int
    expected: float
    p_value: float
    # Days between warnings this strong on data without any cluster (1 / p for daily scans).
    recurrence_days: float | None = None
    case_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default=WarningStatus.OPEN, max_length=16)
    raised_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The last scan that still found it.
    seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    acknowledged_by: int | None = None
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    closed_by: int | None = None
    note: str | None = Field(default=None, max_length=2000)
    version: int = Field(default=1)


class ScanRun(SQLModel, table=True):
    """One scan of one kind for one slot (a day for the daily cluster scan, an hour for the
    spike check): the process that inserts the row runs it; another finds it and skips."""

    __tablename__ = "surveillance_run"
    __table_args__ = (UniqueConstraint("kind", "slot"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    slot: str = Field(max_length=32)
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # What it did: warnings raised and updated, cases read, seconds taken.
    summary: dict[str, object] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
