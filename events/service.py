"""Intake: a report becomes a case (grid → category → unit → deadline), once per client_id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, select
from sqlmodel import Session

from core.errors import Conflict, GridgovError, ValidationFailed
from core.security import Actor
from dispatch import service as dispatch_service
from dispatch.models import Case
from events.models import Report
from events.schemas import ReportIn
from grid import service as grid_service
from grid.index import GridIndex
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


def payload_hash(report: ReportIn) -> str:
    """Fingerprint of what the reporter said, to tell a resend from a different report."""
    body = report.model_dump(mode="json")
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()


_REPORT = Report.__table__  # type: ignore[attr-defined]
_EXISTING = select(_REPORT.c.client_id, _REPORT.c.payload_hash, _REPORT.c.case_id).where(
    _REPORT.c.reporter_id == bindparam("reporter_id"),
    _REPORT.c.client_id == bindparam("client_id"),
)


@dataclass(frozen=True)
class _Seen:
    client_id: str
    payload_hash: str
    case_id: int


def _existing(session: Session, reporter_id: int, client_id: str) -> _Seen | None:
    row = (
        session.connection()
        .execute(_EXISTING, {"reporter_id": reporter_id, "client_id": client_id})
        .first()
    )
    return None if row is None else _Seen(row[0], row[1], row[2])


def _replay(session: Session, found: _Seen, digest: str) -> Case:
    if found.payload_hash != digest:
        raise Conflict(
            f"client_id {found.client_id!r} was already used for a different report",
            code="client_id_conflict",
        )
    case = session.get(Case, found.case_id)
    assert case is not None
    return case


def check_description(text: str, *, max_chars: int) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise ValidationFailed("description must not be empty", code="empty_description")
    if len(cleaned) > max_chars:
        raise ValidationFailed(
            f"description is {len(cleaned)} characters; at most {max_chars} are accepted",
            code="description_too_long",
        )
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
            raise ValidationFailed(
                f"unknown subcategory {report.subcategory_code!r}", code="unknown_subcategory"
            )
        return dispatch_service.routing_for(catalogue, sub.code)
    if report.category_code is not None and catalogue.category(report.category_code) is None:
        raise ValidationFailed(
            f"unknown category {report.category_code!r}; codes are 01-17",
            code="unknown_category",
        )
    candidates = taxonomy_service.classify_within(
        taxonomy.classifier, description, category_code=report.category_code, limit=1
    )
    if candidates:
        best = candidates[0]
        return dispatch_service.routing_for(catalogue, best.subcategory_code, score=best.score)
    # The named category shares nothing with the text: its catch-all (last) subcategory.
    category = catalogue.category(report.category_code or "")
    assert category is not None
    return dispatch_service.routing_for(catalogue, category.subcategories[-1].code, score=0.0)


@dataclass(frozen=True)
class Prepared:
    """A validated report with its placement and routing, computed before any database work."""

    new_case: dispatch_service.NewCase


def prepare(
    report: ReportIn, *, actor: Actor, source: str, now: datetime, ctx: IntakeContext
) -> Prepared:
    """Every check and computation of intake that needs no database (stable error codes)."""
    point = grid_service.check_point(report.lat, report.lng, report.crs)
    description = check_description(report.description, max_chars=ctx.max_description_chars)
    if report.attachment_ids:
        raise ValidationFailed(
            "unknown attachment ids: " + ", ".join(report.attachment_ids[:5]),
            code="unknown_attachment",
        )
    occurred_at = report.occurred_at
    if occurred_at is not None:
        if occurred_at.tzinfo is None:
            raise ValidationFailed(
                "occurred_at needs a timezone offset", code="invalid_occurred_at"
            )
        try:  # year 1 at +14:00 is before the first representable instant
            occurred_at = occurred_at.astimezone(UTC)
        except OverflowError:
            occurred_at = None
        if occurred_at is None or occurred_at.year < 1900:
            raise ValidationFailed("occurred_at is out of range", code="invalid_occurred_at")
        if occurred_at > now:
            raise ValidationFailed("occurred_at is in the future", code="invalid_occurred_at")
    located = grid_service.place(ctx.grids, point, tolerance_m=ctx.tolerance_m)
    routing = route(report, description, ctx.taxonomy)
    return Prepared(
        dispatch_service.NewCase(
            source=source,
            reporter_id=actor.id,
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
    actor: Actor,
    source: str,
    now: datetime,
    ctx: IntakeContext,
) -> tuple[Case, bool]:
    """Create the case for a report, or return the one made for the same client_id earlier.

    Returns (case, created). All checks run before anything is written; a resend is answered
    from the stored report even if the grids or catalogue changed since. Two copies racing in
    at once make the second insert fail on the (reporter, client_id) key: callers retry the
    transaction once (`IntegrityError`), and the retry finds the first copy.
    """
    assert actor.id is not None
    digest = payload_hash(report)
    try:
        prepared = prepare(report, actor=actor, source=source, now=now, ctx=ctx)
    except GridgovError:
        found = _existing(session, actor.id, report.client_id)
        if found is not None:
            return _replay(session, found, digest), False
        raise
    found = _existing(session, actor.id, report.client_id)
    if found is not None:
        return _replay(session, found, digest), False
    case = dispatch_service.open_case(
        session,
        new=prepared.new_case,
        actor=actor,
        now=now,
        calendars=ctx.calendars,
        policy=ctx.policy,
    )
    assert case.id is not None
    session.connection().execute(
        insert(_REPORT),
        [
            {
                "reporter_id": actor.id,
                "client_id": report.client_id,
                "payload_hash": digest,
                "source": source,
                "case_id": case.id,
                "received_at": now,
            }
        ],
    )
    return case, True
