"""Test helper: install a catalogue document as `gridgov taxonomy import` does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from core.db import session_scope
from dispatch import service as dispatch_service
from dispatch.models import Department
from taxonomy import service as taxonomy_service


def import_catalogue(engine: Engine, data: dict[str, Any], *, now: datetime) -> int:
    """Import through the service with the database's departments and open cases; returns the
    revision in force after (InvalidCatalogue when refused, nothing stored)."""
    with session_scope(engine) as session:
        known = set(session.execute(select(col(Department.code))).scalars())
        taxonomy_service.import_catalogue(
            session,
            data,
            now=now,
            known_departments=known,
            cases_in_use=dispatch_service.open_cases_by_subcategory(session),
        )
    with Session(engine) as session:
        return taxonomy_service.latest_revision_id(session)
