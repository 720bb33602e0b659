"""Migration 0003 over history written before it: the legacy rows are checked by the per-case
rule, the global chain starts from their digest, and the first linked row seals it (SQLite)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import shapely
from alembic import command
from shapely.geometry import Point
from sqlmodel import Session

from app.migrate import alembic_config, upgrade
from core.db import make_engine, session_scope
from core.security import SYSTEM_ACTOR
from dispatch import audit
from dispatch import service as dispatch_service
from dispatch.models import Case

KEY = "gridgov-legacy-test-key-0123456789abcdef"
T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def _legacy_database(path: Path) -> str:
    """A database at 0002 with two cases and their history, written by the old rule."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    engine.dispose()
    db = sqlite3.connect(path)  # an old release's writes; no foreign keys needed here
    for case_id, actions in ((1, ["report", "register"]), (2, ["report"])):
        prev = audit.GENESIS
        for seq, action in enumerate(actions, start=1):
            at = T0 + timedelta(minutes=case_id * 10 + seq)
            fields: dict[str, Any] = {
                "action": action,
                "from_status": None if seq == 1 else "reported",
                "to_status": "reported" if seq == 1 else "registered",
                "actor_id": None,
                "actor_role": "system",
                "actor_name": "system",
                "reason": None,
                "data": {},
            }
            digest = audit.row_digest(
                key=KEY, prev_hash=prev, case_id=case_id, seq=seq, at=at, **fields
            )
            db.execute(
                "INSERT INTO case_history (case_id, seq, action, from_status, to_status,"
                " actor_id, actor_role, actor_name, at, reason, data, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, NULL, 'system', 'system', ?, NULL, '{}', ?, ?)",
                (
                    case_id,
                    seq,
                    action,
                    fields["from_status"],
                    fields["to_status"],
                    at.replace(tzinfo=None).isoformat(sep=" "),
                    prev,
                    digest,
                ),
            )
            prev = digest
        db.execute(
            "INSERT INTO gg_case (id, case_no, status, source, description, lat, lng, location,"
            " grid_code, grid_rule, category_code, subcategory_code, department_code, urgency,"
            " time_limit_value, time_limit_unit, warning_level, escalation_level,"
            " extension_count, return_count, redo_count, paused_seconds, clock_started_at,"
            " reported_at, updated_at, history_seq, history_head, version)"
            " VALUES (?, ?, ?, 'grid_worker', '井盖丢失', 23.0, 113.1, ?, '440604011001001',"
            " 'inside', '08', '0801', 'CGJ', 'normal', 4, 'working_hours', 'none', 0, 0, 0, 0,"
            " 0.0, ?, ?, ?, ?, ?, 1)",
            (
                case_id,
                f"20261120{case_id:06d}",
                "registered" if len(actions) == 2 else "reported",
                shapely.to_wkb(Point(113.1, 23.0)),
                T0.replace(tzinfo=None).isoformat(sep=" "),
                T0.replace(tzinfo=None).isoformat(sep=" "),
                T0.replace(tzinfo=None).isoformat(sep=" "),
                len(actions),
                prev,
            ),
        )
    db.commit()
    db.close()
    return url


def _problems(url: str) -> list[audit.ChainProblem]:
    engine = dispatch_service.audit_reader(make_engine(url))
    with Session(engine) as session:
        problems, _ = dispatch_service.verify_audit(session, key=KEY)
    engine.dispose()
    return problems


def test_legacy_history_verifies_then_is_sealed_by_the_first_linked_row(tmp_path: Path) -> None:
    url = _legacy_database(tmp_path / "legacy.db")
    engine = make_engine(url)
    upgrade(engine)
    with engine.connect() as conn:
        head = conn.exec_driver_sql("SELECT gseq, hash FROM audit_head").one()
    assert head[0] == 0
    assert head[1] == audit.legacy_anchor(
        [
            (1, 2, _last_hash(tmp_path / "legacy.db", 1)),
            (2, 1, _last_hash(tmp_path / "legacy.db", 2)),
        ]
    )
    assert _problems(url) == []

    # The service appends to the legacy case 1: the first linked row starts from the anchor.
    policy = dispatch_service.Policy(audit_key=KEY)
    with session_scope(engine) as session:
        case = session.get(Case, 1)
        assert case is not None
        case.status = "dispatched"
        dispatch_service._record(
            session,
            case,
            policy=policy,
            action="dispatch",
            from_status="registered",
            actor=SYSTEM_ACTOR,
            now=T0 + timedelta(hours=1),
        )
    engine.dispose()
    assert _problems(url) == []

    # Now removing the legacy case 2 (history and row) is caught.
    db = sqlite3.connect(tmp_path / "legacy.db")
    with db:
        db.execute("DELETE FROM case_history WHERE case_id = 2")
        db.execute("DELETE FROM gg_case WHERE id = 2")
    db.close()
    problems = _problems(url)
    assert [p.problem.split(":")[0] for p in problems] == [
        "the history rows from before migration 0003 no longer match the digest the log starts from"
    ]


def _last_hash(path: Path, case_id: int) -> str:
    db = sqlite3.connect(path)
    row = db.execute(
        "SELECT hash FROM case_history WHERE case_id = ? ORDER BY seq DESC LIMIT 1", (case_id,)
    ).fetchone()
    db.close()
    return str(row[0])
