"""`gridgov audit verify` against an insider with database access (no key), on both databases.

Each test runs the service on a database of its own, builds a small log through the API,
tampers with the tables directly as an insider would, and runs the CLI: exit 1 and a line
naming the case (`case ID (CASE_NO)`), or `log:` for the log as a whole.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Connection, delete, select, text, update

from app.cli import main
from dispatch.models import AuditHead, Case, CaseHistory
from grid.coords import wgs84_to_gcj02
from tests.conftest import OwnApp, new_client_id

GRID = "440604011001001"
OTHER_GRID = "440604011001002"
_CASE = Case.__table__  # type: ignore[attr-defined]
_HISTORY = CaseHistory.__table__  # type: ignore[attr-defined]
_HEAD = AuditHead.__table__  # type: ignore[attr-defined]


def _verify(*args: str) -> Result:
    return CliRunner().invoke(main, ["audit", "verify", *args])


def _checkpoint() -> str:
    res = CliRunner().invoke(main, ["audit", "checkpoint"])
    assert res.exit_code == 0, res.output
    return res.stdout.strip().splitlines()[-1]


def _report(app: OwnApp, point: Callable[[str], tuple[float, float]], grid: str) -> dict[str, Any]:
    lng, lat = wgs84_to_gcj02(*point(grid))
    body = {
        "client_id": new_client_id(),
        "lat": lat,
        "lng": lng,
        "crs": "gcj02",
        "description": "石湾镇街道某路口井盖丢失，很危险",
    }
    res = app.api.post(f"gw{grid}", "/v1/reports", body)
    assert res.status_code == 201, res.text
    case: dict[str, Any] = res.json()
    return case


def _act(app: OwnApp, who: str, case: dict[str, Any], action: str, **body: Any) -> None:
    app.api.clock.advance(minutes=7)
    res = app.api.post(who, f"/v1/cases/{case['id']}/{action}", body)
    assert res.status_code == 200, (action, res.text)


def _world(
    app: OwnApp, point: Callable[[str], tuple[float, float]], *, a_last: bool = False
) -> dict[str, dict[str, Any]]:
    """A: reported → accepted (its last row mid-log, or the log's last with `a_last`);
    B: reported; C: registered; D: reported. Rows of the cases interleave in the log."""
    a = _report(app, point, GRID)
    b = _report(app, point, OTHER_GRID)
    c = _report(app, point, GRID)
    _act(app, "dispatcher", a, "register")
    _act(app, "dispatcher", a, "dispatch")
    _act(app, "dispatcher", c, "register")
    if not a_last:
        _act(app, "dept-cgj", a, "accept")
    d = _report(app, point, OTHER_GRID)
    if a_last:
        _act(app, "dept-cgj", a, "accept")
    assert _verify().exit_code == 0
    return {"a": a, "b": b, "c": c, "d": d}


def _names(res: Result, case: dict[str, Any]) -> bool:
    """Exit 1 and a problem line naming the case (id, and its number while the row exists)."""
    return res.exit_code == 1 and any(
        line.startswith(f"case {case['id']} (") for line in res.stdout.splitlines()
    )


def _last_row(conn: Connection, case_id: int) -> Any:
    return conn.execute(
        select(_HISTORY).where(_HISTORY.c.case_id == case_id).order_by(_HISTORY.c.seq.desc())
    ).first()


def _point_head_at_last_row(conn: Connection) -> None:
    """What an insider does after cutting the end of the log: the head names the new end."""
    last = conn.execute(select(_HISTORY).order_by(_HISTORY.c.gseq.desc())).first()
    assert last is not None
    conn.execute(update(_HEAD).values(gseq=last.gseq, hash=last.ghash, case_id=last.case_id))


def _remove_case(conn: Connection, case_id: int) -> None:
    conn.execute(text("DELETE FROM report WHERE case_id = :id"), {"id": case_id})
    conn.execute(text("DELETE FROM case_history WHERE case_id = :id"), {"id": case_id})
    conn.execute(text("DELETE FROM gg_case WHERE id = :id"), {"id": case_id})


def test_intact_log_passes_with_and_without_its_checkpoint(
    own_app: OwnApp, demo_points: Any
) -> None:
    _world(own_app, demo_points)
    head = _checkpoint()
    ok = _verify("--head", head)
    assert ok.exit_code == 0, ok.output
    assert "every chain intact" in ok.stdout


@pytest.mark.parametrize("at_end_of_log", [False, True], ids=["mid-log", "end-of-log"])
def test_cutting_a_cases_tail_and_rewriting_its_head_is_caught(
    own_app: OwnApp, demo_points: Any, at_end_of_log: bool
) -> None:
    world = _world(own_app, demo_points, a_last=at_end_of_log)
    a = world["a"]
    with own_app.engine.begin() as conn:
        last = _last_row(conn, a["id"])
        assert last.action == "accept"
        conn.execute(_HISTORY.delete().where(_HISTORY.c.id == last.id))
        before = _last_row(conn, a["id"])
        conn.execute(
            update(_CASE)
            .where(_CASE.c.id == a["id"])
            .values(history_seq=before.seq, history_head=before.hash)
        )
        if at_end_of_log:
            _point_head_at_last_row(conn)
    res = _verify()
    assert _names(res, a), res.output


def test_deleting_all_history_of_a_case_is_caught(own_app: OwnApp, demo_points: Any) -> None:
    b = _world(own_app, demo_points)["b"]
    with own_app.engine.begin() as conn:
        conn.execute(_HISTORY.delete().where(_HISTORY.c.case_id == b["id"]))
        conn.execute(
            update(_CASE).where(_CASE.c.id == b["id"]).values(history_seq=0, history_head="")
        )
    res = _verify()
    assert _names(res, b), res.output
    assert f"case {b['id']} ({b['case_no']}): the case has no history" in res.stdout


@pytest.mark.parametrize(
    "field", ["status", "department_code", "due_at", "visit_satisfaction", "extension_seconds"]
)
def test_editing_a_case_row_directly_is_caught(
    own_app: OwnApp, demo_points: Any, field: str
) -> None:
    a = _world(own_app, demo_points)["a"]
    with own_app.engine.begin() as conn:
        case = conn.execute(select(_CASE).where(_CASE.c.id == a["id"])).one()
        value: Any = {
            "status": "closed",
            "department_code": "ZJJ" if case.department_code != "ZJJ" else "CGJ",
            "due_at": case.due_at + timedelta(days=3),
            # Issue 8's columns: a 回访 or an extension written straight into the table.
            "visit_satisfaction": "satisfied",
            "extension_seconds": case.extension_seconds + 3600.0,
        }[field]
        conn.execute(update(_CASE).where(_CASE.c.id == a["id"]).values({field: value}))
    res = _verify()
    assert _names(res, a), res.output
    assert "case row disagrees with the state its last history row" in res.stdout


def test_deleting_a_case_with_its_history_is_caught(own_app: OwnApp, demo_points: Any) -> None:
    c = _world(own_app, demo_points)["c"]
    with own_app.engine.begin() as conn:
        _remove_case(conn, c["id"])
    res = _verify()
    assert res.exit_code == 1
    # The case row is gone: the line names its id (kept by the next row of the log).
    assert f"case {c['id']} (case row missing): log rows gseq" in res.stdout, res.output


def test_deleting_only_a_case_row_is_caught(
    own_app: OwnApp, demo_points: Any, backend: tuple[str, str]
) -> None:
    """An insider who bypasses the foreign key (SQLite's shell does not enforce it; a PostgreSQL
    superuser can switch triggers off) leaves the history behind, orphaned."""
    c = _world(own_app, demo_points)["c"]
    if backend[0] == "sqlite":
        own_app.engine.dispose()
        db = sqlite3.connect(own_app.url.removeprefix("sqlite:///"))
        with db:
            db.execute("DELETE FROM gg_case WHERE id = ?", (c["id"],))
        db.close()
    else:
        with own_app.engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(delete(_CASE).where(_CASE.c.id == c["id"]))
    res = _verify()
    assert f"case {c['id']} (case row missing): the case row was removed" in res.stdout, res.output
    assert res.exit_code == 1


def test_editing_a_history_row_is_caught(own_app: OwnApp, demo_points: Any) -> None:
    a = _world(own_app, demo_points)["a"]
    with own_app.engine.begin() as conn:
        conn.execute(
            update(_HISTORY)
            .where(_HISTORY.c.case_id == a["id"], _HISTORY.c.seq == 2)
            .values(actor_name="someone else")
        )
    res = _verify()
    assert _names(res, a), res.output
    assert f"case {a['id']} ({a['case_no']}) row 2: content does not match" in res.stdout


def test_inserting_a_history_row_is_caught(own_app: OwnApp, demo_points: Any) -> None:
    """A forged closing row for A, linked and counted as well as one can without the key."""
    a = _world(own_app, demo_points)["a"]
    with own_app.engine.begin() as conn:
        last = _last_row(conn, a["id"])
        end = conn.execute(select(_HISTORY).order_by(_HISTORY.c.gseq.desc())).first()
        assert end is not None
        forged = {c.name: getattr(last, c.name) for c in _HISTORY.columns if c.name != "id"} | {
            "seq": last.seq + 1,
            "action": "close",
            "from_status": last.to_status,
            "to_status": "closed",
            "prev_hash": last.hash,
            "hash": "ab" * 32,
            "gseq": end.gseq + 1,
            "gprev_hash": end.ghash,
            "prev_case_id": end.case_id,
            "ghash": "cd" * 32,
        }
        conn.execute(_HISTORY.insert().values(forged))
        conn.execute(
            update(_CASE)
            .where(_CASE.c.id == a["id"])
            .values(status="closed", history_seq=last.seq + 1, history_head="ab" * 32)
        )
        _point_head_at_last_row(conn)
    res = _verify()
    assert _names(res, a), res.output
    assert f"row {last.seq + 1}: content does not match its hash" in res.stdout


@pytest.mark.parametrize("order", ["case", "log"])
def test_reordering_history_rows_is_caught(own_app: OwnApp, demo_points: Any, order: str) -> None:
    """Swap rows 2 and 3 of A: in the case's order (seq) or in the log's (gseq)."""
    a = _world(own_app, demo_points)["a"]
    column = _HISTORY.c[{"case": "seq", "log": "gseq"}[order]]
    with own_app.engine.begin() as conn:
        rows = conn.execute(
            select(_HISTORY.c.id, column).where(
                _HISTORY.c.case_id == a["id"], _HISTORY.c.seq.in_([2, 3])
            )
        ).all()
        (id2, v2), (id3, v3) = sorted(rows, key=lambda r: r[1])
        conn.execute(update(_HISTORY).where(_HISTORY.c.id == id2).values({column.name: -1}))
        conn.execute(update(_HISTORY).where(_HISTORY.c.id == id3).values({column.name: v2}))
        conn.execute(update(_HISTORY).where(_HISTORY.c.id == id2).values({column.name: v3}))
    res = _verify()
    assert _names(res, a), res.output


def test_a_log_cut_back_before_a_checkpoint_is_caught_with_head(
    own_app: OwnApp, demo_points: Any
) -> None:
    """D, the last case, removed whole and the head pointed before it: the log left is
    consistent (no key is needed for that), only the checkpoint kept elsewhere shows the cut."""
    d = _world(own_app, demo_points)["d"]
    head = _checkpoint()
    with own_app.engine.begin() as conn:
        assert _last_row(conn, d["id"]).gseq == int(head.split(":")[0])
        _remove_case(conn, d["id"])
        _point_head_at_last_row(conn)
    assert _verify().exit_code == 0  # what verify cannot see without a checkpoint
    res = _verify("--head", head)
    assert res.exit_code == 1
    assert "log: the log was cut back" in res.stdout, res.output


def test_a_forged_checkpoint_is_refused(own_app: OwnApp, demo_points: Any) -> None:
    _world(own_app, demo_points)
    gseq, ghash, mac = _checkpoint().split(":")
    for forged in (
        f"{int(gseq) + 5}:{ghash}:{mac}",
        f"{gseq}:{ghash}:{'0' * 64}",
        f"{gseq}:{ghash}",
        "not a checkpoint",
    ):
        res = _verify("--head", forged)
        assert res.exit_code == 1, forged
        assert "log: --head refused" in res.stdout


def test_a_checkpoint_of_a_rewritten_log_is_caught(own_app: OwnApp, demo_points: Any) -> None:
    """The row at the checkpoint replaced by another (a rewrite with the hash of a real row)."""
    world = _world(own_app, demo_points)
    head = _checkpoint()
    gseq = int(head.split(":")[0])
    with own_app.engine.begin() as conn:
        conn.execute(update(_HISTORY).where(_HISTORY.c.gseq == gseq).values(ghash="ef" * 32))
        _point_head_at_last_row(conn)
    res = _verify("--head", head)
    assert _names(res, world["d"]), res.output
    assert "it was rewritten" in res.stdout
