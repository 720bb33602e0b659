"""Tables of incoming reports: what each reporter sent, keyed for idempotent intake."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class Report(SQLModel, table=True):
    """A report as received, once per (channel, reporter's identity there, client_id): a
    retried delivery (a phone's resend, WeChat's second try of a MsgId) finds its case."""

    __tablename__ = "report"
    __table_args__ = (UniqueConstraint("channel", "reporter_identity", "client_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    # The sender as the channel names it: an account's id, a WeChat openid, an Open311 key.
    reporter_identity: str = Field(sa_column=Column(String(128), nullable=False))
    # The account behind the reporter, if any (None: a resident, a civic app).
    user_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("app_user.id"), nullable=True)
    )
    # The reporter's id of this report: a phone's client_id, WeChat's MsgId.
    client_id: str = Field(max_length=64)
    payload_hash: str = Field(max_length=64)
    # Deferred: intake claims the key (and the case id) before it writes the case.
    case_id: int = Field(
        sa_column=Column(
            ForeignKey("gg_case.id", deferrable=True, initially="DEFERRED"),
            nullable=False,
            index=True,
        )
    )
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
