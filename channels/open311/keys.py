"""Api keys of civic apps: issued by the CLI, shown once, kept as SHA-256, checked on POST."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from channels.open311.models import Open311Key
from core.errors import (
    Open311InvalidAppName,
    Open311KeyInvalid,
    Open311KeyMissing,
    Open311KeyNotFound,
)

_APP_NAME = re.compile(r"[A-Za-z0-9._-]{1,32}")
# Longer than any key we issue: not worth hashing.
_MAX_KEY_CHARS = 128


@dataclass(frozen=True)
class IssuedKey:
    id: int
    name: str
    api_key: str


def key_hash(api_key: str) -> str:
    """Keys are 256 random bits, so a plain SHA-256 is enough to keep them unusable at rest."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def issue(session: Session, *, name: str, now: datetime) -> IssuedKey:
    """A new key for the app `name` (an app may hold several, to rotate without a gap)."""
    if not _APP_NAME.fullmatch(name):
        raise Open311InvalidAppName(name=name[:64])
    api_key = secrets.token_urlsafe(32)
    row = Open311Key(name=name, key_hash=key_hash(api_key), key_prefix=api_key[:8], created_at=now)
    session.add(row)
    session.flush()
    assert row.id is not None
    return IssuedKey(id=row.id, name=name, api_key=api_key)


def all_keys(session: Session) -> list[Open311Key]:
    return list(session.execute(select(Open311Key).order_by(col(Open311Key.id))).scalars())


def revoke(session: Session, key_id: int, *, now: datetime) -> Open311Key:
    """Refuse the key from now on; revoking twice keeps the first instant."""
    row = session.get(Open311Key, key_id)
    if row is None:
        raise Open311KeyNotFound(key_id=key_id)
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
        session.flush()
    return row


def authenticate(session: Session, api_key: str | None) -> Open311Key:
    """The active key behind `api_key`: missing → 403 missing, unknown or revoked → 403."""
    if api_key is None or api_key == "":
        raise Open311KeyMissing()
    if len(api_key) > _MAX_KEY_CHARS:
        raise Open311KeyInvalid()
    row: Open311Key | None = session.execute(
        select(Open311Key).where(col(Open311Key.key_hash) == key_hash(api_key))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise Open311KeyInvalid()
    return row
