"""Tables of incoming reports: what each reporter sent, keyed for idempotent intake."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class Report(SQLModel, table=True):
    """A report as received; (reporter, client_id) is the idempotency key of intake."""

    __tablename__ = "report"
    __table_args__ = (UniqueConstraint("reporter_id", "client_id"),)

    id: int | None = Field(default=None, primary_key=True)
    reporter_id: int = Field(sa_column=Column(ForeignKey("app_user.id"), nullable=False))
    client_id: str = Field(max_length=64)
    payload_hash: str = Field(max_length=64)
    source: str = Field(max_length=16)
    case_id: int = Field(sa_column=Column(ForeignKey("gg_case.id"), nullable=False, index=True))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
