"""The sweep's queue (`case_due`, migration 0013) follows `gg_case.next_check_at` whoever writes
it: the intake, the unit of work, the sweep's set-based write, SQL by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dispatch.clock import SweptCase, _write_swept
from dispatch.models import Case
from dispatch.tasks import run_sweep
from tests.conftest import Api
from tests.notify.helpers import act, report

# Cases whose queue row is missing, stray or says another instant.
_MISMATCHES = text(
    """
    SELECT c.id, d.case_id FROM gg_case AS c
    LEFT JOIN case_due AS d ON d.case_id = c.id
    WHERE (c.next_check_at IS NULL) <> (d.case_id IS NULL) OR c.next_check_at <> d.next_check_at
    UNION ALL
    SELECT NULL, d.case_id FROM case_due AS d
    WHERE NOT EXISTS (SELECT 1 FROM gg_case AS c WHERE c.id = d.case_id)
    """
)


def due_queue_mismatches(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(_MISMATCHES)]


def _queued(api: Api, case_id: int) -> Any:
    with api.engine.connect() as conn:
        return conn.execute(
            text("SELECT next_check_at FROM case_due WHERE case_id = :id"), {"id": case_id}
        ).scalar_one_or_none()


def _instant(api: Api, case_id: int) -> datetime | None:
    with Session(api.engine) as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.next_check_at


def _sweep(api: Api) -> dict[str, int]:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    return run_sweep(
        api.engine, now=api.clock.now, calendars=runtime.calendars, policy=runtime.policy
    )


def test_the_queue_follows_each_writer_of_the_next_instant(api: Api, demo_points: Any) -> None:
    case_id = report(api, demo_points)
    assert due_queue_mismatches(api.engine) == []
    act(api, "dispatcher", case_id, "register")
    act(api, "dispatcher", case_id, "dispatch")  # the 签收 stage's yellow card next
    first = _instant(api, case_id)
    assert first is not None
    assert _queued(api, case_id) is not None
    api.clock.now = first
    assert _sweep(api)["stage_warning"] == 1  # the set-based write moves it on
    assert _instant(api, case_id) not in (None, first)
    assert due_queue_mismatches(api.engine) == []
    with api.engine.begin() as conn:  # by hand: cleared, set again, the case removed
        conn.execute(
            text("UPDATE gg_case SET next_check_at = NULL WHERE id = :id"), {"id": case_id}
        )
    assert _queued(api, case_id) is None
    later = datetime(2030, 1, 1, tzinfo=UTC)
    with api.engine.begin() as conn:
        conn.execute(
            text("UPDATE gg_case SET next_check_at = :t WHERE id = :id"),
            {"t": later, "id": case_id},
        )
    assert due_queue_mismatches(api.engine) == []
    with api.engine.begin() as conn:
        for table in ("case_history", "report"):
            conn.execute(text(f"DELETE FROM {table} WHERE case_id = :id"), {"id": case_id})
        conn.execute(text("DELETE FROM gg_case WHERE id = :id"), {"id": case_id})
    assert due_queue_mismatches(api.engine) == []
    with api.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_due")).scalar_one() == 0


def test_one_statement_over_many_cases_keeps_each_queue_row(api: Api, demo_points: Any) -> None:
    """PostgreSQL keeps the queue with statement triggers (migration 0019): one UPDATE that
    clears one case's instant, moves another's, sets a third's and leaves the fourth alone."""
    cleared, moved, unset, kept = (report(api, demo_points) for _ in range(4))
    with api.engine.begin() as conn:
        conn.execute(text("UPDATE gg_case SET next_check_at = NULL WHERE id = :id"), {"id": unset})
    before = _queued(api, kept)
    later = datetime(2030, 1, 1, tzinfo=UTC)
    with api.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE gg_case SET next_check_at = CASE id WHEN :cleared THEN NULL"
                " WHEN :kept THEN next_check_at ELSE :later END WHERE id IN (:a, :b, :c, :d)"
            ),
            {"cleared": cleared, "kept": kept, "later": later}
            | dict(zip("abcd", (cleared, moved, unset, kept), strict=True)),
        )
    assert _queued(api, cleared) is None
    assert _instant(api, moved) == _instant(api, unset) == later
    assert _queued(api, moved) is not None
    assert _queued(api, unset) is not None
    assert _queued(api, kept) == before
    assert due_queue_mismatches(api.engine) == []


def test_a_case_closed_leaves_the_queue_and_is_never_swept(api: Api, demo_points: Any) -> None:
    case_id = report(api, demo_points)
    act(api, "dispatcher", case_id, "reject", {"reason": "不属于受理范围"})
    assert _instant(api, case_id) is None
    assert _queued(api, case_id) is None
    api.clock.advance(days=30)
    assert _sweep(api)["checked"] == 0


def test_the_sweeps_write_refuses_a_rule_that_changed_what_it_does_not_write(
    api: Api, demo_points: Any
) -> None:
    case_id = report(api, demo_points)
    with Session(api.engine) as session:
        row = session.connection().execute(
            text("SELECT * FROM gg_case WHERE id = :id"), {"id": case_id}
        )
        swept = SweptCase(row.mappings().one())
        swept.next_check_at = api.clock.now + timedelta(hours=1)
        swept.status = "closed"  # not the sweep's to change
        with pytest.raises(RuntimeError, match="status"):
            _write_swept(session, [swept])
