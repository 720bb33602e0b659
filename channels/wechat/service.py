"""The WeChat webhook's rules: a call is checked (signature, timestamp, AppID, XML) before
anything is stored, then each message is handled once and answered with a reply.

`open_message` refuses a bad call with an error and touches no database. `handle` runs in the
message's transaction: it claims the message's key first (INSERT … ON CONFLICT DO NOTHING on
`wechat_message`), so WeChat's retries and a copy racing into another process (which waits on
the key's index until the first commits) get the stored reply and change nothing.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Integer, String, Text, bindparam, delete, text
from sqlmodel import Session, col

from channels.wechat import conversation as conv
from channels.wechat import crypto, messages
from channels.wechat import media as wechat_media
from channels.wechat.messages import Inbound
from channels.wechat.models import WechatMessage
from core.db import UTCDateTime
from core.errors import (
    DescriptionTooLong,
    EmptyDescription,
    InvalidCoordinates,
    OutsideDistrict,
    PayloadTooLarge,
    WechatAppidMismatch,
    WechatMessageInvalid,
    WechatSignatureInvalid,
    WechatStaleTimestamp,
)
from core.settings import Settings
from dispatch.models import Channel
from dispatch.names import STATUS_LABELS
from events import reporters
from events import service as events_service
from events.schemas import ReportIn
from events.service import IntakeContext, Reporter, mask_identity

log = logging.getLogger("gridgov.wechat")

SUCCESS = "success"  # WeChat's "no reply": nothing is shown to the resident
PROGRESS_LIMIT = 5


@dataclass(frozen=True)
class WechatConfig:
    """The account's settings as the webhook uses them (the current AES key first)."""

    token: str
    appid: str
    keys: tuple[bytes, ...]
    timestamp_window_seconds: int
    max_body_bytes: int
    daily_report_limit: int
    draft_expiry_seconds: int
    photo_window_seconds: int
    timezone: str


def config_of(settings: Settings) -> WechatConfig | None:
    """None when the account is not configured (no token or AppID); a malformed
    EncodingAESKey raises ValueError."""
    if not settings.wechat_token or not settings.wechat_appid:
        return None
    keys = tuple(
        crypto.aes_key(k) for k in (settings.wechat_aes_key, settings.wechat_aes_key_previous) if k
    )
    return WechatConfig(
        token=settings.wechat_token,
        appid=settings.wechat_appid,
        keys=keys,
        timestamp_window_seconds=settings.wechat_timestamp_window_seconds,
        max_body_bytes=settings.wechat_max_body_bytes,
        daily_report_limit=settings.wechat_daily_report_limit,
        draft_expiry_seconds=settings.wechat_draft_expiry_seconds,
        photo_window_seconds=settings.wechat_photo_window_seconds,
        timezone=settings.timezone,
    )


@dataclass(frozen=True)
class CallParams:
    """The query string WeChat signs every call with."""

    signature: str | None
    timestamp: str
    nonce: str
    encrypt_type: str | None = None
    msg_signature: str | None = None

    @property
    def safe_mode(self) -> bool:
        return (self.encrypt_type or "").lower() == "aes"


def _check_signature(config: WechatConfig, params: CallParams, *, required: bool) -> None:
    if params.signature is None and not required:
        return
    expected = crypto.signature(config.token, params.timestamp, params.nonce)
    if not crypto.signature_matches(expected, params.signature):
        raise WechatSignatureInvalid()


def _check_timestamp(config: WechatConfig, params: CallParams, *, now: datetime) -> None:
    """Against replays: a call signed longer ago (or ahead) than the window is refused."""
    stamp = params.timestamp
    window = config.timestamp_window_seconds
    if not stamp.isdigit() or len(stamp) > 12 or abs(int(stamp) - now.timestamp()) > window:
        raise WechatStaleTimestamp(window=window)


def verify_url(config: WechatConfig, params: CallParams, echostr: str, *, now: datetime) -> str:
    """The URL check (GET): the echostr back when the call is signed with our token."""
    _check_signature(config, params, required=True)
    _check_timestamp(config, params, now=now)
    return echostr


def open_message(
    config: WechatConfig, params: CallParams, body: bytes, *, now: datetime
) -> Inbound:
    """The message a POST carries, or a refusal (4xx) with nothing stored: size, signature,
    timestamp, then (safe mode) msg_signature, the current or previous key and the AppID."""
    if len(body) > config.max_body_bytes:
        raise PayloadTooLarge(limit=config.max_body_bytes)
    # Plain mode needs `signature`; safe mode is signed by `msg_signature` (checked below),
    # and `signature`, when sent too, must match as well. Checked before the XML is parsed.
    _check_signature(config, params, required=not params.safe_mode)
    _check_timestamp(config, params, now=now)
    if not params.safe_mode:
        return messages.inbound(messages.parse_fields(body))
    if params.msg_signature is None:
        raise WechatSignatureInvalid()
    envelope = messages.parse_fields(body)
    encrypted = envelope.get("Encrypt", "")
    if not encrypted:
        raise WechatMessageInvalid(reason="safe mode without <Encrypt>")
    expected = crypto.signature(config.token, params.timestamp, params.nonce, encrypted)
    if not crypto.signature_matches(expected, params.msg_signature):
        raise WechatSignatureInvalid()
    if not config.keys:
        raise WechatMessageInvalid(reason="safe mode is not configured (no EncodingAESKey)")
    opened = crypto.open_sealed(encrypted, keys=list(config.keys), appid=config.appid)
    if opened is None:
        raise WechatMessageInvalid(reason="no configured EncodingAESKey opens <Encrypt>")
    if opened.appid != config.appid:
        raise WechatAppidMismatch()
    return messages.inbound(messages.parse_fields(opened.xml.encode()))


@dataclass(frozen=True)
class Sealed:
    body: str
    media_type: str


def seal(config: WechatConfig, reply: str, *, safe_mode: bool, nonce: str, now: datetime) -> Sealed:
    """The HTTP answer for a reply: `success` as is, XML plain or (safe mode) encrypted with
    the current key and signed."""
    if reply == SUCCESS:
        return Sealed(SUCCESS, "text/plain")
    if not safe_mode or not config.keys:
        return Sealed(reply, "application/xml")
    timestamp = str(int(now.timestamp()))
    encrypted = crypto.encrypt(reply, key=config.keys[0], appid=config.appid)
    signed = crypto.signature(config.token, timestamp, nonce, encrypted)
    return Sealed(
        messages.encrypted_reply(
            encrypt=encrypted, signature=signed, timestamp=timestamp, nonce=nonce
        ),
        "application/xml",
    )


# --- handling a message, once ------------------------------------------------------------------

_CLAIM = text(
    "INSERT INTO wechat_message (msg_key, msg_type, received_at, reply)"
    " VALUES (:msg_key, :msg_type, :received_at, '') ON CONFLICT (msg_key) DO NOTHING"
    " RETURNING msg_key"
).bindparams(bindparam("received_at", type_=UTCDateTime()))


_REPLY = text("SELECT reply FROM wechat_message WHERE msg_key = :msg_key")
_ANSWERED = text(
    "UPDATE wechat_message SET reply = :reply, case_id = :case_id WHERE msg_key = :msg_key"
)
_FILED_TODAY = text(
    "SELECT count(*) FROM report WHERE channel = 'wechat' AND reporter_identity = :openid"
    " AND received_at >= :since"
).bindparams(bindparam("since", type_=UTCDateTime()))
# The draft is read and written with plain statements, not the ORM: this runs for every
# message, and the ORM's unit of work (or an upsert with RETURNING) costs twice the client CPU.
_DRAFT_COLUMNS = (
    "draft_id, updated_at, lat, lng, label, description, photos, case_id, case_no, filed_at"
)
_DRAFT_SELECT = {
    dialect: text(
        f"SELECT {_DRAFT_COLUMNS} FROM wechat_draft WHERE openid = :openid{lock}"
    ).columns(
        draft_id=String(),
        updated_at=UTCDateTime(),
        lat=Float(),
        lng=Float(),
        label=String(),
        description=Text(),
        photos=Integer(),
        case_id=Integer(),
        case_no=String(),
        filed_at=UTCDateTime(),
    )
    for dialect, lock in (("postgresql", " FOR UPDATE"), ("sqlite", ""))
}
_DRAFT_UPDATE = text(
    "UPDATE wechat_draft SET draft_id = :draft_id, updated_at = :updated_at, lat = :lat,"
    " lng = :lng, label = :label, description = :description, photos = :photos,"
    " case_id = :case_id, case_no = :case_no, filed_at = :filed_at WHERE openid = :openid"
).bindparams(
    bindparam("updated_at", type_=UTCDateTime()), bindparam("filed_at", type_=UTCDateTime())
)
_DRAFT_DELETE = text("DELETE FROM wechat_draft WHERE openid = :openid")
_DRAFT_ROW = text(
    "INSERT INTO wechat_draft (openid, draft_id, photos, updated_at)"
    " VALUES (:openid, :draft_id, 0, :updated_at) ON CONFLICT (openid) DO NOTHING"
).bindparams(bindparam("updated_at", type_=UTCDateTime()))


@dataclass(frozen=True)
class Handled:
    reply: str  # the plaintext reply XML, or "success"
    case_id: int | None = None  # the case this message made
    repeated: bool = False  # seen before: the stored reply, nothing done


def handle(
    session: Session,
    *,
    message: Inbound,
    config: WechatConfig,
    ctx: IntakeContext,
    now: datetime,
) -> Handled:
    """Answer one message, once per key: the first copy does the work and stores its reply,
    every later copy (a retry, a racing process) gets that reply."""
    key = message.key
    conn = session.connection()
    claimed = conn.execute(
        _CLAIM, {"msg_key": key, "msg_type": message.msg_type[:16], "received_at": now}
    ).scalar()
    if claimed is None:
        stored = conn.execute(_REPLY, {"msg_key": key}).scalar_one()
        return Handled(reply=stored, repeated=True)
    turn = _Turn(session, message=message, config=config, ctx=ctx, now=now)
    content = turn.respond()
    reply = (
        SUCCESS
        if content is None
        else messages.text_reply(message, content, now=int(now.timestamp()))
    )
    session.flush()
    conn.execute(_ANSWERED, {"msg_key": key, "reply": reply, "case_id": turn.case_id})
    return Handled(reply=reply, case_id=turn.case_id)


# WeChat's tries of a message come within ~15 s; a day covers any retry by far. Then the row
# goes, with its reply (which names the resident).
MESSAGE_RETENTION = timedelta(days=1)


def prune_messages(session: Session, *, now: datetime) -> int:
    """Forget messages handled more than MESSAGE_RETENTION ago; returns how many."""
    result = session.execute(
        delete(WechatMessage).where(col(WechatMessage.received_at) < now - MESSAGE_RETENTION)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def apology(message: Inbound, *, now: datetime) -> str:
    """The reply when handling failed (nothing was stored): ask the resident to send again."""
    return messages.text_reply(message, conv.APOLOGY, now=int(now.timestamp()))


def day_start(now: datetime, timezone: str) -> datetime:
    """Midnight of `now`'s local day, in UTC (the daily limit counts local days)."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


class _Turn:
    """One message's effect on the resident's conversation; `respond` gives the reply text
    (None: no reply)."""

    def __init__(
        self,
        session: Session,
        *,
        message: Inbound,
        config: WechatConfig,
        ctx: IntakeContext,
        now: datetime,
    ) -> None:
        self.session = session
        self.message = message
        self.openid = message.openid
        self.config = config
        self.ctx = ctx
        self.now = now
        self.case_id: int | None = None

    def respond(self) -> str | None:
        m = self.message
        if m.msg_type == "event":
            return self._event(m.get("Event").lower())
        if m.msg_type == "text":
            return self._text(m.get("Content"))
        if m.msg_type == "voice":
            recognised = m.get("Recognition")
            if not recognised:
                return conv.VOICE_UNRECOGNISED
            return self._text(recognised)
        if m.msg_type == "location":
            return self._location()
        if m.msg_type == "image":
            return self._photo()
        return conv.UNSUPPORTED

    # --- events and commands ---

    def _event(self, event: str) -> str | None:
        if event == "subscribe":
            return conv.WELCOME
        if event == "unsubscribe":  # the resident leaves: their draft goes too
            self._drop_draft(always=True)
            return None
        return None

    def _text(self, text: str) -> str:
        command = conv.command_of(text)
        if command is conv.Command.PROGRESS:
            return self._progress()
        if command is conv.Command.CANCEL:
            return conv.CANCELLED if self._drop_draft(always=False) else conv.NOTHING_TO_CANCEL
        if command is conv.Command.HELP:
            return conv.HOW_TO
        if not text.strip():
            return conv.ASK[conv.Missing.DESCRIPTION]
        draft = self._draft()
        limit = self.ctx.max_description_chars
        updated = conv.with_text(draft, text, now=self.now)
        if len(updated.description or "") > limit:
            return conv.too_long_text(limit)
        return self._advance(updated, "text")

    def _progress(self) -> str:
        cases = reporters.cases_of_reporter(
            self.session, channel=Channel.WECHAT.value, identity=self.openid, limit=PROGRESS_LIMIT
        )
        if not cases:
            return conv.NO_CASES
        zone = ZoneInfo(self.config.timezone)
        lines = [
            f"{c.case_no}｜{STATUS_LABELS.get(c.status, c.status)}｜"
            f"{c.reported_at.astimezone(zone):%Y-%m-%d} 上报"
            for c in cases
        ]
        return conv.progress_text(lines)

    def _drop_draft(self, *, always: bool) -> bool:
        """Forget the resident's unfinished report (`always`: the filed one too); True when
        there was an unfinished one."""
        draft = self._stored()
        if draft is None:
            return False
        live = not draft.filed and not draft.empty and not self._stale(draft)
        if live or always:
            self.session.execute(_DRAFT_DELETE, {"openid": self.openid})
        return live

    # --- parts of a report ---

    def _location(self) -> str:
        try:
            lat = float(self.message.get("Location_X"))
            lng = float(self.message.get("Location_Y"))
        except ValueError:
            return conv.ASK[conv.Missing.LOCATION]
        if not (math.isfinite(lat) and math.isfinite(lng)):
            return conv.ASK[conv.Missing.LOCATION]
        draft = self._draft()
        label = self.message.get("Label")[:200] or None
        updated = conv.with_location(draft, lat=lat, lng=lng, label=label, now=self.now)
        return self._advance(updated, "location")

    def _photo(self) -> str:
        m = self.message
        msg_id = m.msg_id or m.key
        if not m.get("MediaId"):
            return conv.UNSUPPORTED
        current = self._lock()
        window = self.config.photo_window_seconds
        if conv.photo_goes_to_case(current, now=self.now, window_seconds=window):
            assert current.case_id is not None
            assert current.case_no is not None
            wechat_media.queue_media(
                self.session,
                openid=self.openid,
                media_id=m.get("MediaId"),
                msg_id=msg_id,
                draft_id=current.draft_id,
                case_id=current.case_id,
                now=self.now,
            )
            return conv.photo_added_text(current.case_no)
        draft = self._open(current)
        wechat_media.queue_media(
            self.session,
            openid=self.openid,
            media_id=m.get("MediaId"),
            msg_id=msg_id,
            draft_id=draft.draft_id,
            now=self.now,
        )
        return self._advance(conv.with_photo(draft, now=self.now), "photo")

    def _advance(self, draft: conv.Draft, part: str) -> str:
        """Keep the draft; file it when it is complete (within the daily limit)."""
        if conv.missing(draft) is not conv.Missing.NOTHING:
            self._store(draft)
            return conv.received_text(part, draft)
        limit = self.config.daily_report_limit
        if self._filed_today() >= limit:
            self._store(draft)
            return conv.daily_limit_text(limit)
        assert draft.lat is not None
        assert draft.lng is not None
        assert draft.description
        report = ReportIn(
            client_id=draft.draft_id,
            lat=draft.lat,
            lng=draft.lng,
            crs="gcj02",
            description=draft.description,
            attachment_ids=[],
        )
        # No savepoint: intake checks everything before it writes anything, so a refusal
        # leaves the transaction as it was.
        try:
            case, _created = events_service.intake(
                self.session,
                report=report,
                reporter=Reporter(Channel.WECHAT, self.openid),
                now=self.now,
                ctx=self.ctx,
            )
        except (OutsideDistrict, InvalidCoordinates):
            self._store(conv.without_location(draft, now=self.now))
            return conv.OUTSIDE
        except (DescriptionTooLong, EmptyDescription):
            self._store(replace(draft, description=None, updated_at=self.now))
            return conv.too_long_text(self.ctx.max_description_chars)
        assert case.id is not None
        if draft.photos:
            wechat_media.attach_to_case(
                self.session,
                openid=self.openid,
                draft_id=draft.draft_id,
                case_id=case.id,
                now=self.now,
            )
        self.case_id = case.id
        self._store(conv.filed(draft, case_id=case.id, case_no=case.case_no, now=self.now))
        log.info("wechat report from %s filed as %s", mask_identity(self.openid), case.case_no)
        return conv.filed_text(case.case_no, draft.photos)

    def _filed_today(self) -> int:
        since = day_start(self.now, self.config.timezone)
        return int(
            self.session.execute(_FILED_TODAY, {"openid": self.openid, "since": since}).scalar_one()
        )

    # --- the draft row ---

    def _stale(self, draft: conv.Draft) -> bool:
        return self.now - draft.updated_at > timedelta(seconds=self.config.draft_expiry_seconds)

    def _open(self, stored: conv.Draft) -> conv.Draft:
        return conv.open_draft(
            stored,
            now=self.now,
            expiry_seconds=self.config.draft_expiry_seconds,
            new_id=uuid.uuid4().hex,
        )

    def _stored(self) -> conv.Draft | None:
        """The resident's draft, locked (PostgreSQL; SQLite writers go one at a time)."""
        dialect = self.session.get_bind().dialect.name
        row = self.session.execute(_DRAFT_SELECT[dialect], {"openid": self.openid}).first()
        if row is None:
            return None
        return conv.Draft(**row._asdict())

    def _lock(self) -> conv.Draft:
        """The resident's draft, created if need be and locked: two messages of one resident
        handled at once (two processes) take turns on it."""
        self.session.execute(
            _DRAFT_ROW,
            {"openid": self.openid, "draft_id": uuid.uuid4().hex, "updated_at": self.now},
        )
        draft = self._stored()
        assert draft is not None
        return draft

    def _draft(self) -> conv.Draft:
        return self._open(self._lock())

    def _store(self, draft: conv.Draft) -> None:
        self.session.execute(_DRAFT_UPDATE, {"openid": self.openid, **asdict(draft)})
