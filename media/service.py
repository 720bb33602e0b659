"""Attachments: store an upload (checked, re-encoded, content-addressed), link it to a case,
and sweep the ones never linked. Every channel stores and links through these."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from core.db import reader, session_scope
from core.errors import UnknownAttachment
from core.settings import Settings
from media.images import Limits, clean
from media.models import Attachment, AttachmentLink, MediaPrune
from media.storage import Storage

__all__ = [
    "ACCOUNT_CHANNEL",
    "Limits",
    "PruneResult",
    "Purpose",
    "Storage",
    "check",
    "describe",
    "limits_of",
    "link",
    "links_of",
    "prune",
    "storage_of",
    "store",
]

_ATTACHMENT = Attachment.__table__  # type: ignore[attr-defined]
_LINK = AttachmentLink.__table__  # type: ignore[attr-defined]
_PRUNE = MediaPrune.__table__  # type: ignore[attr-defined]


class Purpose(StrEnum):
    """Why a case uses an attachment."""

    REPORT = "report"  # the reporter's photo
    RESOLVE = "resolve"  # 反馈: the unit's after-photo
    VERIFY = "verify"  # 核查: the grid worker's check photo


# The channel recorded for an account's uploads (phone app, console); an account owns its
# uploads whatever channel it reports through (`user_id`).
ACCOUNT_CHANNEL = "account"


def storage_of(settings: Settings) -> Storage:
    """GRIDGOV_ATTACHMENT_DIR, else `attachments` beside the SQLite file (a server database:
    in the working directory)."""
    if settings.attachment_dir:
        return Storage(Path(settings.attachment_dir))
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Storage(Path(url.database).resolve().parent / "attachments")
    return Storage(Path("attachments").resolve())


def limits_of(settings: Settings) -> Limits:
    return Limits(
        max_bytes=settings.attachment_max_bytes,
        max_pixels=settings.attachment_max_pixels,
        thumb_px=settings.attachment_thumb_px,
    )


def new_id() -> str:
    """32 URL-safe characters from 24 random bytes: not guessable, not enumerable."""
    return secrets.token_urlsafe(24)


def store(
    session: Session,
    data: bytes,
    *,
    channel: str,
    identity: str,
    user_id: int | None,
    now: datetime,
    storage: Storage,
    limits: Limits,
) -> Attachment:
    """Check and re-encode an upload, write its files (image and thumbnail) and its row.

    The owner is the account (`user_id`) when there is one, else (channel, identity), like
    `events.service.Reporter`. Refused uploads write nothing (errors from `media.images`)."""
    cleaned = clean(data, limits)
    image, thumb = cleaned.image, cleaned.thumb
    storage.put(image.sha256, image.data, now=now)
    storage.put(thumb.sha256, thumb.data, now=now)
    attachment = Attachment(
        id=new_id(),
        channel=channel,
        identity=identity,
        user_id=user_id,
        content_type=image.content_type,
        size=image.size,
        sha256=image.sha256,
        width=image.width,
        height=image.height,
        thumb_content_type=thumb.content_type,
        thumb_size=thumb.size,
        thumb_sha256=thumb.sha256,
        thumb_width=thumb.width,
        thumb_height=thumb.height,
        original_sha256=hashlib.sha256(data).hexdigest(),
        original_size=len(data),
        linked=False,
        created_at=now,
    )
    session.add(attachment)
    session.flush()
    return attachment


def _owned_by(channel: str, identity: str, user_id: int | None) -> ColumnElement[bool]:
    """An account's uploads are the account's (whatever channel it used); others' are their
    (channel, identity)'s."""
    by_channel = and_(
        _ATTACHMENT.c.user_id.is_(None),
        _ATTACHMENT.c.channel == channel,
        _ATTACHMENT.c.identity == identity,
    )
    if user_id is None:
        return by_channel
    return or_(_ATTACHMENT.c.user_id == user_id, by_channel)


def _unknown(ids: Sequence[str], found: set[str]) -> UnknownAttachment:
    missing = [i for i in dict.fromkeys(ids) if i not in found]
    return UnknownAttachment(ids=", ".join(missing[:5]))


def check(
    session: Session,
    attachment_ids: Sequence[str],
    *,
    channel: str,
    identity: str,
    user_id: int | None = None,
) -> None:
    """Refuse (`unknown_attachment`) ids that name no attachment or another's upload: read
    only, so callers check before they write anything."""
    wanted = set(attachment_ids)
    if not wanted:
        return
    rows = session.connection().execute(
        select(_ATTACHMENT.c.id).where(
            _ATTACHMENT.c.id.in_(sorted(wanted)), _owned_by(channel, identity, user_id)
        )
    )
    found = {row[0] for row in rows}
    if found != wanted:
        raise _unknown(attachment_ids, found)


def link(
    session: Session,
    attachment_ids: Sequence[str],
    *,
    case_id: int,
    purpose: str,
    channel: str,
    identity: str,
    user_id: int | None = None,
    now: datetime,
) -> None:
    """Record that a case uses these attachments (`purpose`: report, resolve or verify).

    Raises `unknown_attachment` for ids that do not exist or were not uploaded by this owner
    (see `store`). Marking them linked first also guards against the orphan sweep: on
    PostgreSQL the sweep's DELETE waits for this row lock and then skips the row."""
    wanted = sorted(set(attachment_ids))
    if not wanted:
        return
    Purpose(purpose)
    conn = session.connection()
    marked = conn.execute(
        update(_ATTACHMENT)
        .where(_ATTACHMENT.c.id.in_(wanted), _owned_by(channel, identity, user_id))
        .values(linked=True)
        .returning(_ATTACHMENT.c.id)
    )
    found = {row[0] for row in marked}
    if found != set(wanted):
        raise _unknown(attachment_ids, found)
    have = {
        row[0]
        for row in conn.execute(
            select(_LINK.c.attachment_id).where(
                _LINK.c.attachment_id.in_(wanted),
                _LINK.c.case_id == case_id,
                _LINK.c.purpose == purpose,
            )
        )
    }
    rows = [
        {"attachment_id": i, "case_id": case_id, "purpose": purpose, "linked_at": now}
        for i in wanted
        if i not in have
    ]
    if rows:
        conn.execute(insert(_LINK), rows)


def describe(attachment: Attachment) -> dict[str, Any]:
    """The attachment as the API shows it (no owner: residents' identities stay here)."""
    return {
        "id": attachment.id,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "width": attachment.width,
        "height": attachment.height,
        "thumbnail": {
            "content_type": attachment.thumb_content_type,
            "size": attachment.thumb_size,
            "width": attachment.thumb_width,
            "height": attachment.thumb_height,
        },
        "created_at": attachment.created_at,
    }


def links_of(session: Session, case_ids: Iterable[int | None]) -> dict[int, list[dict[str, Any]]]:
    """Each case's attachments, oldest link first: {case_id: [{id, purpose, content_type,
    width, height}]} (cases without any, or not yet written (None), are absent)."""
    wanted = sorted({i for i in case_ids if i is not None})
    if not wanted:
        return {}
    rows = session.connection().execute(
        select(
            _LINK.c.case_id,
            _LINK.c.purpose,
            _ATTACHMENT.c.id,
            _ATTACHMENT.c.content_type,
            _ATTACHMENT.c.width,
            _ATTACHMENT.c.height,
        )
        .join(_ATTACHMENT, _ATTACHMENT.c.id == _LINK.c.attachment_id)
        .where(_LINK.c.case_id.in_(wanted))
        .order_by(_LINK.c.case_id, _LINK.c.linked_at, _ATTACHMENT.c.id)
    )
    out: dict[int, list[dict[str, Any]]] = {}
    for case_id, purpose, att_id, content_type, width, height in rows:
        out.setdefault(case_id, []).append(
            {
                "id": att_id,
                "purpose": purpose,
                "content_type": content_type,
                "width": width,
                "height": height,
            }
        )
    return out


def case_ids_using(session: Session, attachment_id: str) -> list[int]:
    """The cases that use an attachment (for the access rule: who may see one of them)."""
    rows = session.connection().execute(
        select(_LINK.c.case_id).where(_LINK.c.attachment_id == attachment_id).distinct()
    )
    return sorted(row[0] for row in rows)


# --- the orphan sweep --------------------------------------------------------------------


@dataclass(frozen=True)
class PruneResult:
    skipped: bool = False  # another process holds this run
    rows: int = 0  # attachments never linked, removed
    files: int = 0  # files no attachment uses any more, removed

    def as_json(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "rows": self.rows, "files": self.files}


def claim_prune(session: Session, *, now: datetime, every: timedelta) -> bool:
    """Take the sweep's next run (a conditional UPDATE of its one row: of two schedulers
    ticking together exactly one wins); the row is created on first use."""
    conn = session.connection()
    if conn.execute(select(_PRUNE.c.id).where(_PRUNE.c.id == 1)).first() is None:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(dialect_insert(_PRUNE).values(id=1, next_run_at=now).on_conflict_do_nothing())
    claimed = conn.execute(
        update(_PRUNE)
        .where(_PRUNE.c.id == 1, _PRUNE.c.next_run_at <= now)
        .values(next_run_at=now + every)
    )
    return bool(claimed.rowcount == 1)


def prune(
    engine: Engine,
    *,
    now: datetime,
    older_than: timedelta,
    storage: Storage,
    every: timedelta | None = None,
) -> PruneResult:
    """Remove attachments never linked to a case and uploaded before `now - older_than`, then
    the files no attachment uses that were not stamped within that time (an upload stamps its
    files before it writes its row, so a file about to be used again stays).

    With `every` (the scheduler) it runs only when it can claim the run; without (the CLI) it
    runs now. Rows go in one transaction, committed before any file is removed: a failure
    leaves files without rows (removed next time), never rows without files."""
    cutoff = now - older_than
    with session_scope(engine) as session:
        if every is not None and not claim_prune(session, now=now, every=every):
            return PruneResult(skipped=True)
        gone = (
            session.connection()
            .execute(
                delete(_ATTACHMENT)
                .where(_ATTACHMENT.c.linked.is_(False), _ATTACHMENT.c.created_at < cutoff)
                .returning(_ATTACHMENT.c.sha256, _ATTACHMENT.c.thumb_sha256)
            )
            .all()
        )
    storage.remove_temporaries(before=cutoff)
    stale = {sha for sha, stamp in storage.digests() if stamp < cutoff.timestamp()}
    if not stale:
        return PruneResult(rows=len(gone))
    listed = sorted(stale)
    used: set[str] = set()
    with session_scope(reader(engine)) as session:
        conn = session.connection()
        for start in range(0, len(listed), 500):
            chunk = listed[start : start + 500]
            for column in (_ATTACHMENT.c.sha256, _ATTACHMENT.c.thumb_sha256):
                used |= {row[0] for row in conn.execute(select(column).where(column.in_(chunk)))}
    files = sum(
        storage.remove(sha)
        for sha in listed
        if sha not in used and _stamped_before(storage, sha, cutoff)
    )
    return PruneResult(rows=len(gone), files=files)


def _stamped_before(storage: Storage, sha256: str, cutoff: datetime) -> bool:
    """Checked again just before removing: an upload may have stamped it meanwhile."""
    try:
        return storage.path_of(sha256).stat().st_mtime < cutoff.timestamp()
    except FileNotFoundError:
        return False
