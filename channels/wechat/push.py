"""Status pushes to residents: template messages sent through the one outbox.

The `wechat` subscription (migration 0017) takes the events a resident should know —
registered, rejected (with the reason), resolved, closed, merged (with the surviving case's
number) — of cases a resident reported through WeChat, counting the reporters of cases merged
into it (`events.reporters.reporters_of`). The outbox's delivery worker hands those deliveries
to `send_event`, which sends one template message per resident and records each
(`wechat_push`), so a retry of the delivery (the outbox's backoff) tells only those not yet told.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import Pool
from sqlmodel import Session, col

from channels.wechat.api import WechatApi, WechatApiError
from channels.wechat.outbound_models import WechatPush
from core.db import session_scope
from dispatch.changes import CaseEvent, EventType
from dispatch.models import Case, CaseHistory, CaseStatus, Channel
from dispatch.names import STATUS_LABELS
from events.reporters import reporters_of
from notify import delivery, outbox
from notify.delivery import Claimed, Outcome
from notify.models import OutboxEvent, SubscriptionKind, WebhookSubscription

log = logging.getLogger("gridgov.wechat.push")

RESIDENT_EVENTS = frozenset(
    {
        EventType.REGISTERED,
        EventType.REJECTED,
        EventType.RESOLVED,
        EventType.CLOSED,
        EventType.MERGED,
    }
)
# WeChat refusing one resident for good: unfollowed (43004), an OpenID not of this account
# (40003), messages refused by the resident (43101). Anything else (WeChat down, a wrong
# template id, the token) fails the attempt, retried with the outbox's backoff.
RECIPIENT_REFUSED = frozenset({40003, 43004, 43101})
# WeChat's limit on a template field's value (and no newlines in it).
FIELD_MAX_CHARS = 20
_SPACES = re.compile(r"\s+")

_PUSH = WechatPush.__table__  # type: ignore[attr-defined]


def field_value(text: str) -> str:
    """A template field: one line (whitespace runs become one space), at most 20 characters
    (a longer text ends in "…")."""
    line = _SPACES.sub(" ", text).strip()
    if len(line) <= FIELD_MAX_CHARS:
        return line
    return line[: FIELD_MAX_CHARS - 1] + "…"


_REMARKS = {
    EventType.REGISTERED.value: "您反映的问题已受理，将派至责任单位处置",
    EventType.RESOLVED.value: "责任单位已处置完毕，待网格员现场核查",
    EventType.CLOSED.value: "问题已办结，感谢您的参与",
}


def template_data(
    event_type: str,
    case: dict[str, Any],
    *,
    occurred_at: datetime,
    tz: ZoneInfo,
    reason: str | None = None,
    survivor_case_no: str | None = None,
) -> dict[str, str]:
    """The template's fields (case_no, status, time, remark) for one event, in Simplified
    Chinese, each one line of at most 20 characters."""
    status = STATUS_LABELS.get(case.get("status", ""), "")
    if event_type == EventType.REJECTED.value:
        remark = f"原因：{reason}" if reason else "不予立案"
    elif event_type == EventType.MERGED.value:
        remark = f"已并入{survivor_case_no}" if survivor_case_no else "已与同一问题合并办理"
    else:
        remark = _REMARKS.get(event_type, "")
    return {
        "case_no": field_value(str(case.get("case_no", ""))),
        "status": field_value(status),
        "time": field_value(f"{occurred_at.astimezone(tz):%Y-%m-%d %H:%M}"),
        "remark": field_value(remark),
    }


@dataclass(frozen=True)
class Pusher:
    """What sending needs in a process where WeChat is configured."""

    api: WechatApi
    template_id: str
    tz: ZoneInfo


# One per connection pool (a database of this process), gone with its engine.
_PUSHERS: weakref.WeakKeyDictionary[Pool, Pusher] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def configure(engine: Engine, pusher: Pusher | None) -> None:
    """Push through `pusher` for `engine`'s database (None: this process pushes nothing)."""
    with _LOCK:
        if pusher is None:
            _PUSHERS.pop(engine.pool, None)
        else:
            _PUSHERS[engine.pool] = pusher


def ensure_subscription(engine: Engine, *, now: datetime) -> None:
    """The outbox's one `wechat` subscription, made (or made active again) where WeChat pushes
    are configured; several processes starting at once make one (a unique index per kind)."""
    table = WebhookSubscription.__table__  # type: ignore[attr-defined]
    with session_scope(engine) as session:
        dialect = session.connection().dialect.name
        insert_row = postgresql.insert if dialect == "postgresql" else sqlite.insert
        made = session.execute(
            insert_row(table)
            .values(
                url="wechat:/cgi-bin/message/template/send",
                secret="",
                department_code=None,
                area_code=None,
                event_types=sorted(t.value for t in RESIDENT_EVENTS),
                active=True,
                created_at=now,
                kind=SubscriptionKind.WECHAT.value,
            )
            .on_conflict_do_nothing()
            .returning(table.c.id)
        ).first()
        revived = session.execute(
            update(table)
            .where(table.c.kind == SubscriptionKind.WECHAT.value, table.c.active.is_(False))
            .values(active=True)
            .returning(table.c.id)
        ).first()
        if made is not None or revived is not None:
            outbox.subscriptions_changed(session)


def _pusher_of(engine: Engine) -> Pusher | None:
    with _LOCK:
        return _PUSHERS.get(engine.pool)


def wechat_openids(session: Session, case_id: int) -> list[str]:
    """The OpenIDs of the residents who reported the case or a case merged into it."""
    return [
        identity
        for channel, identity in reporters_of(session, case_id)
        if channel == Channel.WECHAT.value
    ]


def takes(session: Session, event: CaseEvent, case: Case) -> bool:
    """The outbox's routing for the `wechat` subscription: an event a resident should know,
    of a case a resident reported, where this process can push."""
    if event.type not in RESIDENT_EVENTS:
        return False
    if _pusher_of(session.connection().engine) is None or case.id is None:
        return False
    return bool(wechat_openids(session, case.id))


def _reject_reason(session: Session, case_id: int, at: datetime) -> str | None:
    """The reason given with the case's rejection (its latest history row to `rejected`)."""
    return session.execute(
        select(col(CaseHistory.reason))
        .where(
            col(CaseHistory.case_id) == case_id,
            col(CaseHistory.to_status) == CaseStatus.REJECTED.value,
            col(CaseHistory.at) <= at,
        )
        .order_by(col(CaseHistory.seq).desc())
        .limit(1)
    ).scalar_one_or_none()


def _message(session: Session, event: OutboxEvent, tz: ZoneInfo) -> dict[str, str]:
    data = event.case_data
    reason = survivor = None
    if event.type == EventType.REJECTED.value:
        reason = _reject_reason(session, event.case_id, event.occurred_at)
    if event.type == EventType.MERGED.value and data.get("merged_into_id") is not None:
        survivor = session.execute(
            select(col(Case.case_no)).where(col(Case.id) == data["merged_into_id"])
        ).scalar_one_or_none()
    return template_data(
        event.type,
        data,
        occurred_at=event.occurred_at,
        tz=tz,
        reason=reason,
        survivor_case_no=survivor,
    )


def send_event(engine: Engine, item: Claimed, now: datetime) -> Outcome:
    """The delivery worker's sender for `wechat` deliveries: one template message per resident
    of the event's case not told yet; ok when every one is sent (or refused for that resident
    for good, e.g. unfollowed: recorded with the error, not tried again)."""
    pusher = _pusher_of(engine)
    if pusher is None:
        return Outcome(False, None, "WeChat pushes are not configured in this process")
    with session_scope(engine) as session:
        event = session.get(OutboxEvent, item.event_id)
        if event is None:
            return Outcome(False, None, "event gone")
        openids = wechat_openids(session, event.case_id)
        told = set(
            session.execute(
                select(_PUSH.c.openid).where(_PUSH.c.event_id == item.event_id)
            ).scalars()
        )
        data = _message(session, event, pusher.tz)
    errors: list[str] = []
    for openid in openids:
        if openid in told:
            continue
        msgid: str | None = None
        refused: str | None = None
        try:
            msgid = pusher.api.send_template(
                openid=openid, template_id=pusher.template_id, data=data
            )
        except WechatApiError as exc:
            if exc.errcode not in RECIPIENT_REFUSED:
                errors.append(str(exc))
                continue
            refused = str(exc)[:500]
            log.info("wechat push of event %s refused for a resident: %s", item.event_id, exc)
        _record(engine, item.event_id, openid, msgid=msgid, error=refused, now=now)
    if errors:
        return Outcome(False, None, f"wechat: {len(errors)} not sent: {errors[0]}"[:500])
    return Outcome(True, 200, None)


def _record(
    engine: Engine,
    event_id: int,
    openid: str,
    *,
    msgid: str | None,
    error: str | None,
    now: datetime,
) -> None:
    """One resident told (committed at once: a crash after it does not send it again)."""
    try:
        with session_scope(engine) as session:
            session.execute(
                insert(_PUSH).values(
                    event_id=event_id, openid=openid, wechat_msgid=msgid, error=error, sent_at=now
                )
            )
    except IntegrityError:  # another worker, whose lease ran out meanwhile, recorded it
        pass


def install() -> None:
    """Route and send `wechat` subscriptions' deliveries in this process (idempotent)."""
    outbox.register_router(SubscriptionKind.WECHAT, takes)
    delivery.register_sender(SubscriptionKind.WECHAT, send_event)
