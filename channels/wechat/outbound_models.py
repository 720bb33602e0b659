"""Tables of the WeChat outbound side: the shared access token, the media download queue and
the record of template messages sent per (outbox event, resident)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class WechatAccessToken(SQLModel, table=True):
    """The one access token of an official account (refreshing invalidates the old one, so every
    process uses this row). A process refreshing it holds the lease (`lease_token` until
    `leased_until`), taken with a conditional UPDATE; the others wait and reuse what it stores."""

    __tablename__ = "wechat_access_token"

    appid: str = Field(sa_column=Column(String(64), primary_key=True))
    token: str | None = Field(default=None, sa_column=Column(String(600), nullable=True))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    refreshed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    leased_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    lease_token: str | None = Field(default=None, max_length=32)


class MediaStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (or leased by a worker until leased_until)
    STORED = "stored"  # downloaded into an attachment; linked once its case exists
    FAILED = "failed"  # WeChat refused it for good, or it expired (3 days) before we got it


class WechatMedia(SQLModel, table=True):
    """A resident's photo to fetch from the media API before its media_id expires; it belongs to
    the resident's draft (`draft_id`) until the draft becomes a case (`case_id`)."""

    __tablename__ = "wechat_media"
    __table_args__ = (
        UniqueConstraint("msg_id"),
        Index("ix_wechat_media_due", "status", "next_attempt_at"),
        Index("ix_wechat_media_draft", "openid", "draft_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    openid: str = Field(sa_column=Column(String(128), nullable=False))
    media_id: str = Field(sa_column=Column(String(256), nullable=False))
    # The message's MsgId (WeChat's three tries of one message queue one download).
    msg_id: str = Field(sa_column=Column(String(64), nullable=False))
    draft_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    case_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("gg_case.id"), nullable=True)
    )
    status: str = Field(default=MediaStatus.PENDING, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    leased_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    lease_token: str | None = Field(default=None, max_length=32)
    # WeChat keeps a media_id 3 days: a download not done by then is failed for good.
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    attachment_id: str | None = Field(
        default=None, sa_column=Column(String(64), ForeignKey("attachment.id"), nullable=True)
    )
    linked: bool = Field(default=False)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class WechatPush(SQLModel, table=True):
    """A template message sent for an outbox event to one resident: a retry of the event's
    delivery skips the residents already told."""

    __tablename__ = "wechat_push"
    __table_args__ = (UniqueConstraint("event_id", "openid"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(sa_column=Column(ForeignKey("outbox_event.id"), nullable=False))
    openid: str = Field(sa_column=Column(String(128), nullable=False))
    # WeChat's msgid of the template message.
    wechat_msgid: str | None = Field(default=None, max_length=64)
    # Set when WeChat refused this resident for good (unsubscribed, blocked): not tried again.
    error: str | None = Field(default=None, max_length=500)
    sent_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
