"""Residents' photos: queued by the webhook, fetched from WeChat's media API by a job, stored as
attachments and linked to the case their draft became.

The interface the inbound webhook calls, in the message's own transaction:

    queue_media(session, *, openid: str, media_id: str, msg_id: str, draft_id: str | None,
                now: datetime, case_id: int | None = None) -> None
        # an image message: download it soon (before its media_id expires after 3 days); it
        # belongs to the resident's draft `draft_id` (or straight to `case_id`, e.g. a photo
        # sent just after the case was made)
    attach_to_case(session, *, openid: str, draft_id: str, case_id: int, now: datetime) -> int
        # the draft became `case_id`: its photos go to the case (those already downloaded are
        # linked now, the others when they arrive); returns how many photos the draft had

The job (`fetch_due`, every few seconds in the scheduler and `gridgov wechat fetch-media`)
claims due rows with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), downloads with no
transaction open, and records each result under its lease: a failed download is tried again
after 30 s, 1 min, 2 min … (capped at an hour), so a photo gets dozens of tries well before it
expires; one WeChat refuses for good, or still missing at expiry, is `failed` with its reason.
"""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from channels.wechat.api import WechatApi, WechatApiError
from channels.wechat.outbound_models import MediaStatus, WechatMedia
from core.db import session_scope
from core.errors import GridgovError
from dispatch.models import Channel
from media import service as media_service

log = logging.getLogger("gridgov.wechat.media")

# WeChat keeps an uploaded temporary media three days.
MEDIA_LIFETIME = timedelta(days=3)
RETRY_CAP_SECONDS = 3600.0
# WeChat's answer for a media_id it does not have (wrong, or expired): no use trying again.
# Anything else (network, busy, token or IP whitelist trouble) is retried until the expiry.
MEDIA_GONE = frozenset({40007})
_MEDIA = WechatMedia.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class MediaPolicy:
    retry_base_seconds: float = 30.0
    lease_seconds: float = 120.0
    batch: int = 20


def queue_media(
    session: Session,
    *,
    openid: str,
    media_id: str,
    msg_id: str,
    draft_id: str | None,
    now: datetime,
    case_id: int | None = None,
) -> None:
    """Queue an image message's download (once per MsgId: a retried message queues nothing)."""
    queued = select(col(WechatMedia.id)).where(col(WechatMedia.msg_id) == msg_id)
    if session.execute(queued).first() is not None:
        return
    session.add(
        WechatMedia(
            openid=openid,
            media_id=media_id,
            msg_id=msg_id,
            draft_id=draft_id,
            case_id=case_id,
            status=MediaStatus.PENDING,
            next_attempt_at=now,
            expires_at=now + MEDIA_LIFETIME,
            created_at=now,
        )
    )
    session.flush()


def attach_to_case(
    session: Session, *, openid: str, draft_id: str, case_id: int, now: datetime
) -> int:
    """The draft became a case: its photos belong to the case; the downloaded ones are linked
    now (purpose `report`), the others by the job when they arrive."""
    rows = list(
        session.execute(
            select(WechatMedia).where(
                col(WechatMedia.openid) == openid,
                col(WechatMedia.draft_id) == draft_id,
                col(WechatMedia.case_id).is_(None),
            )
        ).scalars()
    )
    for row in rows:
        row.case_id = case_id
        _link_if_ready(session, row, now=now)
        session.add(row)
    session.flush()
    return len(rows)


def _link_if_ready(session: Session, row: WechatMedia, *, now: datetime) -> None:
    """Link the photo to its case once both exist (once)."""
    if row.linked or row.case_id is None or row.attachment_id is None:
        return
    media_service.link(
        session,
        [row.attachment_id],
        case_id=row.case_id,
        purpose=media_service.Purpose.REPORT.value,
        channel=Channel.WECHAT.value,
        identity=row.openid,
        now=now,
    )
    row.linked = True


@dataclass(frozen=True)
class _Claimed:
    id: int
    media_id: str
    attempts: int
    expires_at: datetime
    token: str


def _claim(engine: Engine, *, now: datetime, policy: MediaPolicy) -> list[_Claimed]:
    """Fail what expired; lease the due rows (one transaction, committed before downloading)."""
    m = _MEDIA
    token = secrets.token_hex(16)
    due = (
        select(m.c.id)
        .where(
            m.c.status == MediaStatus.PENDING.value,
            m.c.next_attempt_at <= now,
            or_(m.c.leased_until.is_(None), m.c.leased_until <= now),
        )
        .order_by(m.c.next_attempt_at, m.c.id)
        .limit(policy.batch)
        .with_for_update(skip_locked=True)
    )
    with session_scope(engine) as session:
        session.execute(
            update(m)
            .where(
                m.c.status == MediaStatus.PENDING.value,
                m.c.expires_at <= now,
                or_(m.c.leased_until.is_(None), m.c.leased_until <= now),
            )
            .values(
                status=MediaStatus.FAILED.value,
                last_error="expired: the media_id is older than 3 days",
                done_at=now,
            )
        )
        session.execute(
            update(m)
            .where(m.c.id.in_(due.scalar_subquery()))
            .values(leased_until=now + timedelta(seconds=policy.lease_seconds), lease_token=token)
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(m.c.id, m.c.media_id, m.c.attempts, m.c.expires_at)
            .where(m.c.lease_token == token)
            .order_by(m.c.id)
        ).all()
    return [_Claimed(r.id, r.media_id, r.attempts, r.expires_at, token) for r in rows]


def retry_delay(attempts: int, *, base: float, rng: random.Random) -> float:
    """Seconds before the next try after `attempts` failed ones: base, 2×base … ≤ an hour,
    with up to 25 % jitter (several processes do not retry in step)."""
    step = min(RETRY_CAP_SECONDS, base * 2 ** max(attempts - 1, 0))
    return float(min(RETRY_CAP_SECONDS, step * (1 + 0.25 * rng.random())))


def fetch_due(
    engine: Engine,
    *,
    api: WechatApi,
    storage: media_service.Storage,
    limits: media_service.Limits,
    now: datetime,
    policy: MediaPolicy | None = None,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """One batch: claim, download each (no transaction open), store and link under the lease."""
    policy = policy or MediaPolicy()
    rng = rng or random.Random()
    counts = {"claimed": 0, "stored": 0, "retrying": 0, "failed": 0}
    for item in _claim(engine, now=now, policy=policy):
        counts["claimed"] += 1
        data: bytes | None = None
        error: str | None = None
        final = False
        try:
            data = api.download_media(item.media_id)
        except WechatApiError as exc:  # only a media_id WeChat does not know is final
            error, final = f"wechat {exc}"[:500], exc.errcode in MEDIA_GONE
        outcome = _record(
            engine,
            item,
            data=data,
            error=error,
            final=final,
            now=now,
            policy=policy,
            rng=rng,
            storage=storage,
            limits=limits,
        )
        counts[outcome] += 1
    return counts


def _record(
    engine: Engine,
    item: _Claimed,
    *,
    data: bytes | None,
    error: str | None,
    final: bool,
    now: datetime,
    policy: MediaPolicy,
    rng: random.Random,
    storage: media_service.Storage,
    limits: media_service.Limits,
) -> str:
    """Store the download's result if the lease is still ours: `stored`, `retrying` or
    `failed` (WeChat refused it for good, the bytes are not an accepted image, or the next try
    would come after expiry)."""
    with session_scope(engine) as session:
        row = session.execute(
            select(WechatMedia)
            .where(col(WechatMedia.id) == item.id, col(WechatMedia.lease_token) == item.token)
            .with_for_update()
        ).scalar_one_or_none()
        if row is None:  # the lease ran out and another worker took it
            return "retrying"
        values: dict[str, Any] = {"attempts": item.attempts + 1}
        if data is not None:
            try:
                with session.begin_nested():
                    attachment = media_service.store(
                        session,
                        data,
                        channel=Channel.WECHAT.value,
                        identity=row.openid,
                        user_id=None,
                        now=now,
                        storage=storage,
                        limits=limits,
                    )
            except GridgovError as exc:  # not an image we take (type, size, pixels)
                error, final = f"{exc.code}"[:500], True
            else:
                row.attachment_id = attachment.id
                _link_if_ready(session, row, now=now)
                values.update(status=MediaStatus.STORED.value, last_error=None, done_at=now)
        outcome = "stored"
        if data is None or error is not None:
            retry_at = now + timedelta(
                seconds=retry_delay(item.attempts + 1, base=policy.retry_base_seconds, rng=rng)
            )
            if final or retry_at >= item.expires_at:
                values.update(status=MediaStatus.FAILED.value, done_at=now)
                outcome = "failed"
            else:
                values.update(next_attempt_at=retry_at)
                outcome = "retrying"
            values["last_error"] = error
        for key, value in {**values, "leased_until": None, "lease_token": None}.items():
            setattr(row, key, value)
        session.add(row)
    if outcome == "failed":
        log.warning("wechat media %s failed: %s", item.id, error)
    return outcome


def drain(
    engine: Engine,
    *,
    api: WechatApi,
    storage: media_service.Storage,
    limits: media_service.Limits,
    clock: Any,
    policy: MediaPolicy | None = None,
    max_batches: int = 100,
) -> dict[str, int]:
    """Batches until one comes back short: one tick of the job (and the CLI command)."""
    policy = policy or MediaPolicy()
    totals = {"claimed": 0, "stored": 0, "retrying": 0, "failed": 0}
    for _ in range(max_batches):
        counts = fetch_due(
            engine, api=api, storage=storage, limits=limits, now=clock(), policy=policy
        )
        for key, value in counts.items():
            totals[key] += value
        if counts["claimed"] < policy.batch:
            break
    return totals


def queue_state(
    session: Session, *, failed_only: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    """The queue as an operator sees it (newest first): failed downloads are listed with why."""
    query = select(WechatMedia).order_by(col(WechatMedia.id).desc()).limit(limit)
    if failed_only:
        query = query.where(col(WechatMedia.status) == MediaStatus.FAILED.value)
    rows = session.execute(query)
    return [
        {
            "id": r.id,
            "msg_id": r.msg_id,
            "case_id": r.case_id,
            "status": r.status,
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at.isoformat(),
            "attachment_id": r.attachment_id,
            "last_error": r.last_error,
        }
        for r in rows.scalars()
    ]


__all__ = ["MEDIA_LIFETIME", "MediaPolicy", "attach_to_case", "drain", "fetch_due", "queue_media"]
