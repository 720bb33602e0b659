"""The open cases' cards (`case_card`, migration 0023) follow `gg_case` whoever writes it, the
SLA board and the card lists read them, and no index of `gg_case` names a column the sweep
writes, so that its updates stay on the row's page (HOT) on PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.engine import Engine

from dispatch.clock import SWEPT_FIELDS
from dispatch.models import OPEN_LOOP_STATUSES
from tests.conftest import Api
from tests.dispatch.test_case_due import _instant, _sweep
from tests.dispatch.test_case_due_migration import _migrate
from tests.notify.helpers import GRID, act, report

_OPEN = ", ".join(f"'{s}'" for s in OPEN_LOOP_STATUSES)
# Cases whose card row is missing, stray or says another level.
_MISMATCHES = text(
    f"""
    SELECT c.id, k.case_id FROM gg_case AS c
    LEFT JOIN case_card AS k ON k.case_id = c.id
    WHERE (c.status IN ({_OPEN}) AND c.warning_level <> 'none') <> (k.case_id IS NOT NULL)
       OR (k.case_id IS NOT NULL AND (c.warning_level <> k.warning_level
           OR c.status <> k.status OR c.due_at IS DISTINCT FROM k.due_at))
    UNION ALL
    SELECT NULL, k.case_id FROM case_card AS k
    WHERE NOT EXISTS (SELECT 1 FROM gg_case AS c WHERE c.id = k.case_id)
    """
)


def card_mismatches(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(_MISMATCHES)]


def _card(api: Api, case_id: int) -> str | None:
    with api.engine.connect() as conn:
        return conn.execute(
            text("SELECT warning_level FROM case_card WHERE case_id = :id"), {"id": case_id}
        ).scalar_one_or_none()


def _dispatched(api: Api, demo_points: Any) -> int:
    case_id = report(api, demo_points)
    act(api, "dispatcher", case_id, "register")
    act(api, "dispatcher", case_id, "dispatch")
    act(api, _unit(api, case_id), case_id, "accept")
    return case_id


def _unit(api: Api, case_id: int) -> str:
    """The account of the case's department."""
    code = api.get("dispatcher", f"/v1/cases/{case_id}").json()["department_code"]
    return f"dept-{code.lower()}"


def test_the_card_follows_the_sweep_the_actions_and_sql_by_hand(api: Api, demo_points: Any) -> None:
    case_id = _dispatched(api, demo_points)
    assert _card(api, case_id) is None  # on time: no card
    for expected in ("yellow", "red"):
        for _ in range(20):  # to the next instant the sweep acts on, until the card shows
            if _card(api, case_id) == expected:
                break
            api.clock.now = _instant(api, case_id)
            _sweep(api)
        assert _card(api, case_id) == expected
        assert card_mismatches(api.engine) == []
    act(api, _unit(api, case_id), case_id, "resolve", {"note": "已修复"})
    assert _card(api, case_id) == "red"  # still in the loop
    act(api, f"gw{GRID}", case_id, "verify", {"passed": True})
    act(api, "dispatcher", case_id, "close")  # out of the loop
    assert _card(api, case_id) is None
    assert card_mismatches(api.engine) == []
    others = [report(api, demo_points) for _ in range(3)]
    with api.engine.begin() as conn:  # by hand, one statement over several cases
        conn.execute(
            text(
                "UPDATE gg_case SET warning_level = CASE id WHEN :a THEN 'red' "
                "WHEN :b THEN 'yellow' ELSE warning_level END WHERE id IN (:a, :b, :c)"
            ),
            dict(zip("abc", others, strict=True)),
        )
    assert [_card(api, c) for c in others] == ["red", "yellow", None]
    with api.engine.begin() as conn:
        conn.execute(text("UPDATE gg_case SET status = 'closed' WHERE id = :id"), {"id": others[0]})
        for table in ("case_history", "report", "case_due"):
            conn.execute(text(f"DELETE FROM {table} WHERE case_id = :id"), {"id": others[1]})
        conn.execute(text("DELETE FROM duplicate_candidate"))
        conn.execute(text("DELETE FROM gg_case WHERE id = :id"), {"id": others[1]})
    assert _card(api, others[0]) is None
    assert card_mismatches(api.engine) == []


def test_the_board_and_the_card_lists_count_open_cards_only(api: Api, demo_points: Any) -> None:
    cases = [report(api, demo_points) for _ in range(4)]
    with api.engine.begin() as conn:  # a closed late case keeps its red card in its row
        conn.execute(
            text(
                "UPDATE gg_case SET warning_level = 'red', status = CASE id WHEN :closed "
                "THEN 'closed' ELSE status END WHERE id IN (:closed, :red)"
            ),
            {"closed": cases[0], "red": cases[1]},
        )
        conn.execute(
            text("UPDATE gg_case SET warning_level = 'yellow' WHERE id = :id"), {"id": cases[2]}
        )
    board = api.get("dispatcher", "/v1/stats/open?by=town").json()
    assert (board["total"]["open"], board["total"]["warning"], board["total"]["overdue"]) == (
        3,
        1,
        1,
    )
    statuses = "".join(f"&status={s}" for s in OPEN_LOOP_STATUSES)
    for sla, expected in (("overdue", [cases[1]]), ("warning", [cases[2]])):
        page = api.get("dispatcher", f"/v1/cases?sla={sla}{statuses}&sort=due_at").json()
        assert [c["id"] for c in page["items"]] == expected
        assert page["total"] == 1
    # Some of the statuses, another filter (the cases joined), both: the same cases.
    for query, expected_ids in (
        ("&status=reported", [cases[1]]),
        ("&status=closed&status=reported", [cases[0], cases[1]]),  # not the card table's
        (f"{statuses}&area_code=440604011", [cases[1]]),
        (f"{statuses}&area_code=440604012", []),
        ("&status=registered", []),
    ):
        page = api.get("dispatcher", f"/v1/cases?sla=overdue{query}&sort=-due_at").json()
        assert sorted(c["id"] for c in page["items"]) == sorted(expected_ids), query
        assert page["total"] == len(expected_ids)
    # Without the open statuses `sla` keeps its meaning: the case row's level, closed or not.
    everything = api.get("dispatcher", "/v1/cases?sla=overdue&sort=due_at").json()
    assert sorted(c["id"] for c in everything["items"]) == sorted(cases[:2])


_SWEPT = re.compile(r"\b(" + "|".join(SWEPT_FIELDS) + r")\b")


def test_no_index_of_the_cases_names_what_a_sweep_writes(api: Api) -> None:
    """An UPDATE that changes an indexed column (a key, an INCLUDE or a partial index's
    predicate) cannot be HOT: the sweep's write would add an entry to every index."""
    with api.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            definitions = conn.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'gg_case'")
            ).all()
        else:
            definitions = conn.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'gg_case' AND sql IS NOT NULL"
                )
            ).all()
    assert len(definitions) > 5
    named = {name: _SWEPT.findall(sql) for name, sql in definitions if _SWEPT.search(sql)}
    assert named == {}


def test_0023_fills_the_cards_from_the_cases_and_goes_back(api: Api, demo_points: Any) -> None:
    red, closed, plain = (report(api, demo_points) for _ in range(3))
    _migrate(api.engine, "0022", down=True)
    assert "case_card" not in sa.inspect(api.engine).get_table_names()
    with api.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE gg_case SET warning_level = 'red', status = CASE id WHEN :closed "
                "THEN 'closed' ELSE status END WHERE id IN (:closed, :red)"
            ),
            {"closed": closed, "red": red},
        )
    _migrate(api.engine, "head")
    with api.engine.connect() as conn:
        cards = dict(
            conn.execute(text("SELECT case_id, warning_level FROM case_card")).tuples().all()
        )
    assert cards == {red: "red"}
    assert card_mismatches(api.engine) == []
    with api.engine.begin() as conn:  # the triggers keep it from here on
        conn.execute(
            text("UPDATE gg_case SET warning_level = 'yellow' WHERE id = :id"), {"id": plain}
        )
    assert _card(api, plain) == "yellow"
    assert card_mismatches(api.engine) == []
