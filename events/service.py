"""Intake: a report becomes a case (grid → category → unit → deadline), once per client_id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import TextClause, bindparam, select, text
from sqlmodel import Session

from core.errors import (
    ClientIdConflict,
    DescriptionTooLong,
    EmptyDescription,
    GridgovError,
    InvalidOccurredAt,
    InvalidReporter,
    UnknownCategory,
    UnknownSubcategory,
)
from core.models import Role
from core.security import Actor, Outsider, Party
from core.text import displayable, no_controls
from dispatch import duplicates as dispatch_duplicates
from dispatch import service as dispatch_service
from dispatch.models import Case, Channel
from events.models import Report
from events.schemas import ReportIn
from grid import service as grid_service
from grid.index import GridIndex
from media import service as media_service
from taxonomy import service as taxonomy_service
from taxonomy.service import Taxonomy


@dataclass(frozen=True)
class IntakeContext:
    """What intake needs from the running service, passed in (no globals)."""

    grids: GridIndex
    taxonomy: Taxonomy
    calendars: dispatch_service.CalendarProvider
    policy: dispatch_service.Policy
    tolerance_m: float
    max_description_chars: int
    # 并单 candidates: radius and window per category (dispatch.duplicates).
    duplicates: dispatch_duplicates.DuplicateRules = field(
        default_factory=dispatch_duplicates.DuplicateRules
    )


def payload_hash(report: ReportIn) -> str:
    """Fingerprint of what the reporter said, to tell a resend from a different report."""
    body = report.model_dump(mode="json")
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()


_REPORT = Report.__table__  # type: ignore[attr-defined]
_KEY = ("channel", "reporter_identity", "client_id")
_EXISTING = select(_REPORT.c.client_id, _REPORT.c.payload_hash, _REPORT.c.case_id).where(
    *(_REPORT.c[name] == bindparam(name) for name in _KEY)
)


def _claim_statement(dialect: str) -> TextClause:
    """The report row, with the id of the case it is about to become, unless its key is taken.

    One round trip: the case id comes from `next_case_id_sql` and the key from the unique
    constraint. A copy racing in from another transaction waits for that one to end (the
    unique index), then finds its row: no error, no retry. The row points at a case written
    later in this transaction (the foreign key is deferred). Plain SQL (the same on both
    databases but for the id): SQLAlchemy caches no compiled form of an INSERT … ON CONFLICT
    on these tables, and compiling it on every report costs more than the round trip saved."""
    columns = (*_KEY, "user_id", "payload_hash", "received_at")
    placeholders = ", ".join(f":{name}" for name in columns)
    return text(
        f"INSERT INTO report ({', '.join(columns)}, case_id)"
        f" VALUES ({placeholders}, {dispatch_service.next_case_id_sql(dialect)})"
        f" ON CONFLICT ({', '.join(_KEY)}) DO NOTHING RETURNING case_id"
    ).bindparams(bindparam("received_at", type_=_REPORT.c.received_at.type))


_CLAIM = {dialect: _claim_statement(dialect) for dialect in ("postgresql", "sqlite")}


@dataclass(frozen=True)
class Reporter:
    """Who files a report: the channel it comes through, the sender's identity there (an
    account's id, a WeChat openid, an Open311 key name or device) and the account behind it,
    if any. Every channel files through `intake` with one of these."""

    channel: Channel
    identity: str
    account: Actor | None = None

    def __post_init__(self) -> None:
        if self.account is None and self.channel in _ACCOUNT_CHANNELS:
            raise ValueError(f"channel {self.channel} files with an account")

    @classmethod
    def of_account(cls, actor: Actor) -> Reporter:
        """A signed-in user: a grid worker files as `grid_worker`, the command centre
        (dispatcher, admin) as `dispatcher`; the identity is the account's id."""
        assert actor.id is not None
        channel = Channel.GRID_WORKER if actor.role is Role.GRID_WORKER else Channel.DISPATCHER
        return cls(channel, str(actor.id), actor)

    @property
    def user_id(self) -> int | None:
        return None if self.account is None else self.account.id

    @property
    def party(self) -> Party:
        """Who the case's history names: the account, else channel and masked identity."""
        if self.account is not None:
            return self.account
        return Outsider(self.channel.value, mask_identity(self.identity))


_ACCOUNT_CHANNELS = frozenset({Channel.GRID_WORKER, Channel.DISPATCHER})
MAX_IDENTITY_CHARS = 128


def mask_identity(identity: str) -> str:
    """The first few characters and an ellipsis (`o6_bmjrPT…` → `o6_b…`): enough to tell
    reporters apart in a history, not enough to write to them."""
    return identity[: min(4, len(identity) // 2)] + "…"


def check_reporter(reporter: Reporter) -> None:
    """The identity is a key, so it is taken as given or refused: 1-128 characters, valid
    Unicode, no control characters, no surrounding spaces."""
    identity = reporter.identity
    try:
        no_controls(identity)
        valid = (
            0 < len(identity) <= MAX_IDENTITY_CHARS
            and identity == identity.strip()
            and identity == displayable(identity)
        )
    except ValueError:
        valid = False
    if not valid:
        raise InvalidReporter(channel=reporter.channel.value)


@dataclass(frozen=True)
class _Seen:
    client_id: str
    payload_hash: str
    case_id: int


def _key(reporter: Reporter, report: ReportIn) -> dict[str, str]:
    return {
        "channel": reporter.channel.value,
        "reporter_identity": reporter.identity,
        "client_id": report.client_id,
    }


def _existing(session: Session, key: dict[str, str]) -> _Seen | None:
    row = session.connection().execute(_EXISTING, key).first()
    return None if row is None else _Seen(row[0], row[1], row[2])


def _replay(session: Session, found: _Seen, digest: str) -> Case:
    if found.payload_hash != digest:
        raise ClientIdConflict(client_id=found.client_id)
    case = session.get(Case, found.case_id)
    assert case is not None
    return case


def check_description(text: str, *, max_chars: int) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise EmptyDescription()
    if len(cleaned) > max_chars:
        raise DescriptionTooLong(chars=len(cleaned), limit=max_chars)
    return cleaned


def route(report: ReportIn, description: str, taxonomy: Taxonomy) -> dispatch_service.Routing:
    """The reporter's category when given (checked), else the classifier's best guess."""
    catalogue = taxonomy.catalogue
    if report.subcategory_code is not None:
        sub = catalogue.subcategory(report.subcategory_code)
        if sub is None or (
            report.category_code is not None
            and catalogue.category_of(sub.code).code != report.category_code
        ):
            raise UnknownSubcategory(subcategory=report.subcategory_code)
        return dispatch_service.routing_for(catalogue, sub.code)
    if report.category_code is not None and catalogue.category(report.category_code) is None:
        raise UnknownCategory(category=report.category_code)
    if report.category_code is None:
        # The classifier's word, and whether it is sure (stored: the command centre looks first
        # at what it was not sure of). A category named by the reporter is not in doubt.
        candidates, uncertain = taxonomy.answer(description, limit=1)
    else:
        candidates = taxonomy_service.classify_within(
            taxonomy.classifier, description, category_code=report.category_code, limit=1
        )
        uncertain = False
    if candidates:
        best = candidates[0]
        return dispatch_service.routing_for(
            catalogue, best.subcategory_code, score=best.score, uncertain=uncertain
        )
    # The named category shares nothing with the text: its catch-all (last) subcategory.
    category = catalogue.category(report.category_code or "")
    assert category is not None
    return dispatch_service.routing_for(
        catalogue, category.subcategories[-1].code, score=0.0, uncertain=uncertain
    )


@dataclass(frozen=True)
class Prepared:
    """A validated report with its placement and routing, computed before any database work."""

    new_case: dispatch_service.NewCase


def prepare(report: ReportIn, *, reporter: Reporter, now: datetime, ctx: IntakeContext) -> Prepared:
    """Every check and computation of intake that needs no database (stable error codes)."""
    point = grid_service.check_point(report.lat, report.lng, report.crs)
    description = check_description(report.description, max_chars=ctx.max_description_chars)
    occurred_at = report.occurred_at
    if occurred_at is not None:
        if occurred_at.tzinfo is None:
            raise InvalidOccurredAt()
        try:  # year 1 at +14:00 is before the first representable instant
            occurred_at = occurred_at.astimezone(UTC)
        except OverflowError:
            occurred_at = None
        if occurred_at is None or occurred_at.year < 1900:
            raise InvalidOccurredAt()
        if occurred_at > now:
            raise InvalidOccurredAt()
    located = grid_service.place(ctx.grids, point, tolerance_m=ctx.tolerance_m)
    routing = route(report, description, ctx.taxonomy)
    return Prepared(
        dispatch_service.NewCase(
            channel=reporter.channel.value,
            reporter_id=reporter.user_id,
            description=description,
            lng=located.lng,
            lat=located.lat,
            grid_code=located.placement.grid_code,
            grid_rule=located.placement.rule,
            routing=routing,
            occurred_at=occurred_at,
        )
    )


def intake(
    session: Session,
    *,
    report: ReportIn,
    reporter: Reporter,
    now: datetime,
    ctx: IntakeContext,
) -> tuple[Case, bool]:
    """Create the case for a report, or return the one made for the same key earlier.

    The one way in for every channel. The key is (channel, reporter's identity, client_id):
    the same payload again is the same case, another payload `client_id_conflict`. All checks
    run before anything is written; a resend is answered from the stored report even if the
    grids or catalogue changed since. Copies racing in at once make one case: the later one
    waits for the first to commit, then is answered as a resend. Returns (case, created).
    """
    check_reporter(reporter)
    digest = payload_hash(report)
    key = _key(reporter, report)
    try:
        prepared = prepare(report, reporter=reporter, now=now, ctx=ctx)
        # The photos: the reporter's own uploads (`unknown_attachment` before any write).
        media_service.check(
            session,
            report.attachment_ids,
            channel=reporter.channel.value,
            identity=reporter.identity,
            user_id=reporter.user_id,
        )
    except GridgovError:
        found = _existing(session, key)
        if found is not None:
            return _replay(session, found, digest), False
        raise
    conn = session.connection()
    claimed = conn.execute(
        _CLAIM[conn.dialect.name],
        {**key, "user_id": reporter.user_id, "payload_hash": digest, "received_at": now},
    ).scalar()
    if claimed is None:  # seen before: a resend, or a copy that committed first
        found = _existing(session, key)
        assert found is not None, "a report key was taken and is gone (reports are kept)"
        return _replay(session, found, digest), False
    case = dispatch_service.open_case(
        session,
        new=prepared.new_case,
        actor=reporter.party,
        now=now,
        calendars=ctx.calendars,
        policy=ctx.policy,
        case_id=int(claimed),
    )
    dispatch_duplicates.record(session, case, now=now, rules=ctx.duplicates)
    media_service.link(
        session,
        report.attachment_ids,
        case_id=int(claimed),
        purpose=media_service.Purpose.REPORT,
        channel=reporter.channel.value,
        identity=reporter.identity,
        user_id=reporter.user_id,
        now=now,
    )
    return case, True
