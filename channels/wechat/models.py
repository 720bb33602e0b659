"""Tables of the WeChat webhook: each message handled once, and each resident's unfinished
report (the conversation that becomes a case)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Float, ForeignKey, Integer, String, Text
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class WechatMessage(SQLModel, table=True):
    """A message (or event) seen, keyed by its dedupe key, with the reply it got: WeChat's
    second and third tries, and copies racing into another process, get the same reply."""

    __tablename__ = "wechat_message"

    # sha256 of MsgId, or of FromUserName + CreateTime for events (no OpenID in clear).
    msg_key: str = Field(sa_column=Column(String(64), primary_key=True))
    msg_type: str = Field(max_length=16)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    # The plaintext reply XML, or "success" for no reply.
    reply: str = Field(sa_column=Column(Text, nullable=False))
    # The case this message completed, if it did.
    case_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("gg_case.id"), nullable=True)
    )


class WechatDraft(SQLModel, table=True):
    """A resident's report in the making: location, description and photo count so far. Once
    filed it keeps the case (photos sent soon after go to it) until a new report starts."""

    __tablename__ = "wechat_draft"

    openid: str = Field(sa_column=Column(String(128), primary_key=True))
    # The report's client_id at intake: a new one for each report.
    draft_id: str = Field(max_length=32)
    # As WeChat sends them: GCJ-02 (Location_X is the latitude).
    lat: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    lng: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    label: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    photos: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    case_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("gg_case.id"), nullable=True)
    )
    case_no: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    filed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
