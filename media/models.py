"""Tables of attachments: the uploaded images' metadata and the cases that use them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, PrimaryKeyConstraint, String
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class Attachment(SQLModel, table=True):
    """An uploaded image as served: re-encoded (no metadata, no trailing bytes), its file named
    by the sha256 of those bytes (the same image twice: one file, two rows). Owned by who
    uploaded it: an account (`user_id`), else a channel's identity (a WeChat openid)."""

    __tablename__ = "attachment"
    __table_args__ = (Index("ix_attachment_unlinked", "linked", "created_at"),)

    # Unguessable and opaque (the URL is the only name a client knows).
    id: str = Field(sa_column=Column(String(64), primary_key=True))
    channel: str = Field(max_length=16)
    identity: str = Field(sa_column=Column(String(128), nullable=False))
    user_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("app_user.id"), nullable=True, index=True)
    )
    content_type: str = Field(max_length=32)
    size: int
    sha256: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    width: int
    height: int
    thumb_content_type: str = Field(max_length=32)
    thumb_size: int
    thumb_sha256: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    thumb_width: int
    thumb_height: int
    # The upload's own bytes (before re-encoding): what the sender's copy hashes to.
    original_sha256: str = Field(max_length=64)
    original_size: int
    # Set once a case uses it: an unlinked one older than GRIDGOV_ATTACHMENT_ORPHAN_HOURS goes.
    linked: bool = False
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class AttachmentLink(SQLModel, table=True):
    """An attachment used by a case: the report's photo, the unit's after-photo (`resolve`), the
    grid worker's check photo (`verify`)."""

    __tablename__ = "attachment_link"
    __table_args__ = (PrimaryKeyConstraint("attachment_id", "case_id", "purpose"),)

    attachment_id: str = Field(
        sa_column=Column(String(64), ForeignKey("attachment.id"), nullable=False)
    )
    case_id: int = Field(
        sa_column=Column(Integer, ForeignKey("gg_case.id"), nullable=False, index=True)
    )
    purpose: str = Field(max_length=16)
    linked_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class MediaPrune(SQLModel, table=True):
    """The orphan sweep's one row (id 1): a scheduler claims a run by moving `next_run_at`
    forward with a conditional UPDATE, so two schedulers never prune at once."""

    __tablename__ = "media_prune"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    next_run_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
