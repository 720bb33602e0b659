"""Cases resolved before migration 0010 carry no handling time: `gridgov stats refresh --all`
works it out from their history (on SQLite and PostGIS), records it in the history by the
system so that the audit log still verifies, and the 考核 figures then count them: the hand-built
week's average handling times come out as the hand count."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlmodel import Session, col

from app.cli import main
from dispatch import effects
from dispatch import service as dispatch_service
from dispatch.models import Case, CaseHistory
from dispatch.stats_rollup import BACKFILL_ACTION
from tests.conftest import SECRET, Api
from tests.dispatch.test_stats_http import CGJ, T1, V1, ZJJ, _build, _local
from tests.dispatch.test_stats_rollup import (
    TZ,
    _assert_rollup_equals_live,
    _department_week,
    _periods,
    _scopes,
)


def _without_handling(api: Api) -> int:
    with Session(api.engine) as session:
        return int(
            session.execute(
                select(func.count()).where(
                    col(Case.resolved_at).is_not(None), col(Case.handling_seconds).is_(None)
                )
            ).scalar_one()
        )


def _refresh_all(api: Api) -> dict[str, Any]:
    res = CliRunner().invoke(main, ["stats", "refresh", "--all"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = json.loads(res.output.strip().splitlines()[-1])
    return out


def test_refresh_all_gives_cases_resolved_before_0010_their_handling_time(
    api: Api, demo_points: Any, demo_grid_codes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    g3 = next(g for g in demo_grid_codes if g.startswith(T1) and not g.startswith(V1))
    g2 = next(g for g in demo_grid_codes if not g.startswith(T1))
    with monkeypatch.context() as before_0010:
        # `resolve` kept no handling time then (and the history's states say so).
        before_0010.setattr(effects, "handling_seconds", lambda step: None)
        _build(api, demo_points, g3, g2)
    api.clock.now = _local(2, 9, month=12)
    assert _department_week(api, "CGJ")["avg_handling_working_hours"] is None
    old = _without_handling(api)
    assert old >= 3  # A, B (CGJ) and C (ZJJ) at least

    monkeypatch.setenv("GRIDGOV_DATABASE_URL", api.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GRIDGOV_SECRET_KEY", SECRET)
    out = _refresh_all(api)
    assert out["handling_backfilled"] == old
    assert _without_handling(api) == 0
    # The figures as if the cases had been resolved with the handling time kept (hand count:
    # C counts from its re-dispatch to ZJJ, not from its first dispatch to CGJ).
    assert _department_week(api, "CGJ") == CGJ
    assert _department_week(api, "ZJJ") == ZJJ
    with Session(api.engine) as session:
        entries = session.execute(
            select(col(CaseHistory.actor_name), col(CaseHistory.data)).where(
                col(CaseHistory.action) == BACKFILL_ACTION
            )
        ).all()
        problems, cases = dispatch_service.verify_audit(session, key=SECRET)
    assert len(entries) == old
    assert {name for name, _ in entries} == {"系统"}
    with Session(api.engine) as session:
        kept = session.execute(
            select(col(Case.handling_seconds)).where(col(Case.handling_seconds).is_not(None))
        ).scalars()
        assert sorted(data["handling_seconds"] for _, data in entries) == sorted(kept)
    assert (problems, cases) == ([], cases)
    assert cases > 0
    # The rollup was rebuilt after: it gives the live figures; a second run has nothing to do.
    periods = _periods(("2026-11-24", "2026-11-30"), ("2026-11-01", "2026-12-31"))
    assert _assert_rollup_equals_live(api, periods, _scopes(g3)) > 100
    assert _refresh_all(api)["handling_backfilled"] == 0


def test_refresh_all_needs_the_signing_key(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", api.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GRIDGOV_SECRET_KEY", "short")
    res = CliRunner().invoke(main, ["stats", "refresh", "--all"])
    assert res.exit_code == 2
    assert "insecure_secret_key" in res.output
    assert _without_handling(api) == 0
    with Session(api.engine) as session:
        assert session.execute(select(func.count()).select_from(CaseHistory)).scalar_one() == 0
    assert TZ.key == "Asia/Shanghai"
