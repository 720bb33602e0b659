"""Tables of the Open311 channel: the civic apps' api keys, and per case filed through Open311
what GeoReport carries beyond the case (its token, the app's ids, address text, media URL)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from core.db import UTCDateTime


class Open311Key(SQLModel, table=True):
    """An api key of a civic app: only its SHA-256 is kept (the key is shown once, at issue).
    An app may hold several keys at once (rotation); a revoked key is refused at once."""

    __tablename__ = "open311_key"

    id: int | None = Field(default=None, primary_key=True)
    # The app's name: part of its reporters' identity, so it outlives a key rotation.
    name: str = Field(max_length=32, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    # The key's first characters, to tell keys apart in `keys list`.
    key_prefix: str = Field(max_length=8)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class Open311Request(SQLModel, table=True):
    """One case filed through Open311, with the token its answer carried. Contact details
    (email, names, phone) are not kept here: see `channels.open311.service.report_text`."""

    __tablename__ = "open311_request"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(
        sa_column=Column(Integer, ForeignKey("gg_case.id"), nullable=False, unique=True)
    )
    key_id: int = Field(
        sa_column=Column(Integer, ForeignKey("open311_key.id"), nullable=False, index=True)
    )
    token: str = Field(max_length=32, unique=True)
    account_id: str | None = Field(default=None, max_length=64)
    device_id: str | None = Field(default=None, max_length=64)
    address_string: str | None = Field(default=None, sa_column=Column(String(500)))
    media_url: str | None = Field(default=None, sa_column=Column(String(2000)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
