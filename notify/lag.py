"""How far behind the outbox is: what `/metrics` shows of it (read at scrape time)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from core.db import reader
from notify.models import DeliveryStatus, OutboxDelivery


def outbox_state(engine: Engine, *, now: datetime) -> tuple[dict[str, int], float]:
    """Deliveries by status, and the age in seconds of the oldest due pending one (0: none)."""
    by_status = select(col(OutboxDelivery.status), func.count()).group_by(
        col(OutboxDelivery.status)
    )
    oldest = select(func.min(col(OutboxDelivery.next_attempt_at))).where(
        col(OutboxDelivery.status) == DeliveryStatus.PENDING.value,
        col(OutboxDelivery.next_attempt_at) <= now,
    )
    with reader(engine).connect() as conn:
        counts = {str(status): int(n) for status, n in conn.execute(by_status)}
        due = conn.execute(oldest).scalar_one_or_none()
    if due is None:
        return counts, 0.0
    if isinstance(due, str):  # SQLite's func.min loses the column type
        due = datetime.fromisoformat(due)
    if due.tzinfo is None:
        due = due.replace(tzinfo=now.tzinfo)
    return counts, max(0.0, (now - due).total_seconds())
