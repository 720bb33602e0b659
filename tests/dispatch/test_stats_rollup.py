"""The 考核 rollup (dispatch/stats_rollup.py) gives the figures computed live, on SQLite and
PostGIS: for the hand-built week of tests/dispatch/test_stats_http.py and for a random walk of
cases through the workflow, over one day, a week, whole months and periods spanning rolled and
live days; late changes (a reopen weeks after closure) reach their day at the next refresh."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update
from sqlmodel import Session

from app.cli import main
from app.scheduler import start_scheduler, stats_job
from core.clock import utcnow
from dispatch import stats
from dispatch.models import Case, StatsDaily, StatsRollup
from dispatch.stats import Period, Scope
from dispatch.stats_rollup import DAILY, refresh
from tests.conftest import Api
from tests.dispatch.test_stats_http import CGJ, G1, PERIOD, T1, V1, ZERO, Scenario, _build, _local

TZ = ZoneInfo("Asia/Shanghai")


def _periods(*spans: tuple[str, str]) -> list[Period]:
    return [Period.of(date.fromisoformat(a), date.fromisoformat(b), TZ) for a, b in spans]


def _scopes(g3: str) -> list[Scope]:
    return [
        Scope(),
        Scope(area_code=T1),
        Scope(area_code=g3[:12]),
        Scope(area_code=g3),  # finer than the rollup keeps per department: read live
        Scope(department_code="CGJ"),
        Scope(department_code="ZJJ"),
    ]


def _all_figures(api: Api, period: Period, scope: Scope, *, rollup: bool) -> dict[str, Any]:
    with Session(api.engine) as session:
        out: dict[str, Any] = {
            "departments": [
                f.model_dump()
                for f in stats.department_figures(
                    session, period=period, scope=scope, rollup=rollup
                )
            ]
        }
        if scope.department_code is None:
            for level in stats.LEVEL_DIGITS:
                out[level] = [
                    f.model_dump()
                    for f in stats.area_figures(
                        session, level=level, period=period, scope=scope, rollup=rollup
                    )
                ]
        return out


def _assert_rollup_equals_live(api: Api, periods: list[Period], scopes: list[Scope]) -> int:
    """Every figure of every period and scope, both ways; how many rows were compared."""
    compared = 0
    for period in periods:
        for scope in scopes:
            rolled = _all_figures(api, period, scope, rollup=True)
            live = _all_figures(api, period, scope, rollup=False)
            assert rolled == live, (period.first, period.last, scope)
            compared += sum(len(rows) for rows in live.values())
    return compared


def _state(api: Api) -> StatsRollup:
    with Session(api.engine) as session:
        return session.execute(select(StatsRollup)).scalar_one()


def _department_week(api: Api, code: str, query: str = PERIOD) -> dict[str, Any]:
    res = api.get("dispatcher", f"/v1/stats/departments?{query}")
    assert res.status_code == 200, res.text
    (item,) = [i for i in res.json()["items"] if i["department_code"] == code]
    return {k: v for k, v in item.items() if k not in ("department_code", "department_name")}


def _projections(rows: list[StatsDaily]) -> dict[str, list[StatsDaily]]:
    """A day's rollup rows by projection, each checked to have its key's shape."""
    out: dict[str, list[StatsDaily]] = {"by_village": [], "by_grid": [], "by_department": []}
    for row in rows:
        if row.department_code == stats.ALL_DEPARTMENTS:
            assert len(row.area_code) == stats.GRID_DIGITS
            out["by_grid"].append(row)
        elif row.area_code == stats.ALL_AREAS:
            out["by_department"].append(row)
        else:
            assert len(row.area_code) == stats.VILLAGE_DIGITS
            out["by_village"].append(row)
    return out


@pytest.fixture
def week(api: Api, demo_points: Any, demo_grid_codes: list[str]) -> str:
    g3 = next(g for g in demo_grid_codes if g.startswith(T1) and not g.startswith(V1))
    g2 = next(g for g in demo_grid_codes if not g.startswith(T1))
    _build(api, demo_points, g3, g2)
    api.clock.now = _local(2, 9, month=12)
    return g3


def test_rollup_gives_the_live_figures_of_the_hand_built_week(api: Api, week: str) -> None:
    assert _state(api).rolled_through is None  # never refreshed: everything live
    result = refresh(api.engine, clock=api.clock, tz=TZ)
    # Rolled from the first counted day (24 November) through yesterday (1 December).
    assert (result.first_day, result.last_day) == (date(2026, 11, 24), date(2026, 12, 1))
    assert (result.days, result.rolled_through) == (8, date(2026, 12, 1))
    assert _state(api).rolled_through == date(2026, 12, 1)
    assert _state(api).lease_token is None
    with Session(api.engine) as session:
        daily = session.execute(select(StatsDaily)).scalars().all()
    # Rows for the days with something to count: Tuesday to Friday (A to E), Monday 30
    # (visits, F) and 1 December (F's closure); nothing at the weekend. Each day's rows are
    # three projections of the same counts: per department and village, per grid, per
    # department.
    assert result.rows == len(daily)
    days = {date(2026, 11, d) for d in (24, 25, 26, 27, 30)} | {date(2026, 12, 1)}
    assert {row.day for row in daily} == days
    for day in days:
        totals = {
            kind: [sum(getattr(r, name) for r in rows) for name in stats.COUNT_FIELDS]
            for kind, rows in _projections([r for r in daily if r.day == day]).items()
        }
        assert totals["by_village"] == totals["by_grid"] == totals["by_department"], day
        assert totals["by_grid"][0] + totals["by_grid"][1] > 0, day  # received or closed
    periods = _periods(
        ("2026-11-26", "2026-11-26"),  # one rolled day
        ("2026-11-24", "2026-11-30"),  # the week
        ("2026-11-01", "2026-11-30"),  # a whole month (the monthly rows)
        ("2026-11-15", "2026-12-14"),  # a month: rolled days, then today and after live
        ("2026-12-02", "2026-12-02"),  # today: live only
        ("2026-01-01", "2026-12-31"),  # the year
    )
    assert _assert_rollup_equals_live(api, periods, _scopes(week)) > 1000
    assert _department_week(api, "CGJ") == CGJ
    # The answers read the rollup: a rolled row changed by hand shows in them (and only there).
    with Session(api.engine) as session:
        session.execute(
            update(DAILY)
            .where(
                DAILY.c.day == date(2026, 11, 24),
                DAILY.c.department_code == "CGJ",
                DAILY.c.area_code == stats.ALL_AREAS,
            )
            .values(received=DAILY.c.received + 100)
        )
        session.commit()
    assert _department_week(api, "CGJ")["received"] == CGJ["received"] + 100
    with Session(api.engine) as session:
        live = stats.department_figures(
            session, period=_periods(("2026-11-24", "2026-11-30"))[0], scope=Scope(), rollup=False
        )
    assert next(f for f in live if f.department_code == "CGJ").received == CGJ["received"]


def test_reopen_weeks_after_closure_reaches_the_closure_day_at_the_next_refresh(
    api: Api, week: str, demo_points: Any
) -> None:
    refresh(api.engine, clock=api.clock, tz=TZ)
    nov25 = "from=2026-11-25&to=2026-11-25"
    # B was closed (late) on 25 November.
    b_closed = {
        **ZERO,
        "closed": 1,
        "overdue": 1,
        "on_time_rate": 0.0,
        "avg_handling_working_hours": 5.0,
    }
    assert _department_week(api, "CGJ", nov25) == {**b_closed, "received": 1}
    # Three weeks later a dissatisfied visit and a reopen: B is no longer closed.
    s = Scenario(api, demo_points)
    with Session(api.engine) as session:
        # B: the second case reported in G1.
        b = session.execute(
            select(Case.id).where(Case.grid_code == G1).order_by(Case.id).offset(1).limit(1)
        ).scalar_one()
    s.at(16, 9, month=12).visit(b, "dissatisfied")
    s.at(16, 9, 10, month=12).act("dispatcher", b, "reopen", reason="群众不满意")
    # Until the next refresh the rolled day still counts the closure ...
    assert _department_week(api, "CGJ", nov25)["closed"] == 1
    result = refresh(api.engine, clock=api.clock, tz=TZ)
    # ... which recomputes the days still due (2-15 December) and B's days (its history:
    # 25 November, its closure day; the visit and the reopen are today, live).
    assert date(2026, 11, 25) >= result.first_day  # type: ignore[operator]
    assert result.rolled_through == date(2026, 12, 15)
    assert _department_week(api, "CGJ", nov25) == {**ZERO, "received": 1}
    periods = _periods(
        ("2026-11-25", "2026-11-25"),
        ("2026-11-01", "2026-11-30"),
        ("2026-11-20", "2026-12-19"),
        ("2026-12-16", "2026-12-16"),
    )
    assert _assert_rollup_equals_live(api, periods, _scopes(week)) > 500


def test_a_second_refresher_skips_while_one_holds_the_claim(api: Api, week: str) -> None:
    with Session(api.engine) as session:
        session.execute(
            update(StatsRollup)
            .where(StatsRollup.id == 1)  # type: ignore[arg-type]
            .values(lease_token="other", leased_until=api.clock.now + timedelta(minutes=5))
        )
        session.commit()
    assert refresh(api.engine, clock=api.clock, tz=TZ).skipped
    assert _state(api).rolled_through is None
    # A dead refresher's claim runs out.
    api.clock.advance(minutes=6)
    result = refresh(api.engine, clock=api.clock, tz=TZ)
    assert not result.skipped
    assert result.rolled_through == date(2026, 12, 1)


# The random walk: at random times, a random case gets one of the actions its status allows,
# chosen at random (one the rules still refuse, 403 or 409, just does not happen); refreshes in
# between; at the end the rollup is compared with the live figures.
VISIT = "visit"
BY_STATUS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "reported": [("dispatcher", "register", {})],
    "registered": [
        ("dispatcher", "dispatch", {}),
        ("dispatcher", "dispatch", {"department_code": "ZJJ"}),
    ],
    "dispatched": [
        ("dept", "accept", {}),
        ("dept", "accept", {}),
        ("dept", "return", {"reason": "非本单位职责"}),
        ("dispatcher", "recategorize", {"subcategory_code": "0304", "reason": "实为液化气"}),
    ],
    "accepted": [
        ("dept", "resolve", {"note": "已处理"}),
        ("dept", "resolve", {"note": "已处理"}),
        ("dept", "request_extension", {"reason": "需协调", "hours": 4}),
        ("dispatcher", "approve_extension", {}),
        ("dispatcher", "extend", {"amount": 2, "reason": "工程量大"}),
        ("dispatcher", "supervise", {"note": "督办"}),
    ],
    "resolved": [("gw", "verify", {"passed": True}), ("gw", "verify", {"passed": False})],
    "verified": [("dispatcher", "close", {})],
    "closed": [
        ("dispatcher", VISIT, {"satisfaction": "satisfied", "note": "回访"}),
        ("dispatcher", VISIT, {"satisfaction": "basically_satisfied", "note": "回访"}),
        ("dispatcher", VISIT, {"satisfaction": "dissatisfied", "note": "回访"}),
        ("dispatcher", "reopen", {"reason": "群众不满意"}),
    ],
}


def _walk(
    api: Api, point: Callable[[str], tuple[float, float]], grids: list[str], rng: random.Random
) -> int:
    s = Scenario(api, point)
    cases: dict[int, str] = {}
    done = 0
    api.clock.now = _local(20, 9, month=10)
    for step in range(300):
        api.clock.advance(minutes=rng.choice([5, 20, 60, 180, 600, 1440, 2880]))
        if not cases or rng.random() < 0.12:
            grid = rng.choice(grids)
            cases[s.report(grid)] = grid
            continue
        case_id = rng.choice(sorted(cases))
        case = api.get("dispatcher", f"/v1/cases/{case_id}").json()
        choices = BY_STATUS.get(case["status"], [])
        if not choices:
            continue
        who, action, body = rng.choice(choices)
        if who == "dept":
            who = f"dept-{case['department_code'].lower()}"
        elif who == "gw":
            who = f"gw{cases[case_id]}"
        if action == "verify" and not body["passed"]:
            body = {**body, "reason": "未修好"}
        res = api.post(who, f"/v1/cases/{case_id}/{action}", body)
        assert res.status_code in (200, 403, 409), (action, res.text)
        done += res.status_code == 200
        if step % 40 == 39:
            refresh(api.engine, clock=api.clock, tz=TZ)
    return done


def test_rollup_gives_the_live_figures_of_a_random_walk(
    api: Api, demo_points: Any, demo_grid_codes: list[str]
) -> None:
    rng = random.Random(20261202)
    grids = [G1, *rng.sample([g for g in demo_grid_codes if g != G1], 5)]
    assert _walk(api, demo_points, grids, rng) > 120  # most steps really acted
    last = api.clock.now.astimezone(TZ).date()
    refresh(api.engine, clock=api.clock, tz=TZ)
    # Some late changes after the last refresh, then one more.
    assert _walk_tail(api, rng) == 2
    refresh(api.engine, clock=api.clock, tz=TZ)
    through = _state(api).rolled_through
    assert through is not None
    assert through >= last - timedelta(days=1)
    periods = _periods(
        ("2026-10-20", "2026-10-20"),
        ("2026-11-01", "2026-11-30"),
        ((through - timedelta(days=15)).isoformat(), (through + timedelta(days=14)).isoformat()),
        ("2026-10-01", (through + timedelta(days=30)).isoformat()),
    )
    scopes = [Scope(), Scope(area_code=G1[:12]), Scope(department_code="CGJ")]
    assert _assert_rollup_equals_live(api, periods, scopes) > 200
    # And the figures are not all zero: the walk closed, returned and visited cases.
    total = stats.Counts()
    with Session(api.engine) as session:
        for f in stats.department_figures(session, period=periods[-1], scope=Scope()):
            total.closed += f.closed
            total.returned += f.returned
            total.visited += f.visited
            total.received += f.received
    assert min(total.closed, total.returned, total.visited, total.received) > 0, total


def _walk_tail(api: Api, rng: random.Random) -> int:
    """Dissatisfied visits and reopens of two closed cases days later (rolled days change)."""
    res = api.get("dispatcher", "/v1/cases?status=closed&limit=100")
    changed = 0
    closed = res.json()["items"]
    assert len(closed) > 2
    for case in closed[:2]:
        api.clock.advance(days=rng.randint(1, 3))
        api.post("dispatcher", f"/v1/cases/{case['id']}/visit", {"satisfaction": "dissatisfied"})
        res = api.post("dispatcher", f"/v1/cases/{case['id']}/reopen", {"reason": "不满意"})
        changed += res.status_code == 200
    return changed


def test_cli_refresh_rolls_up_to_yesterday_and_rebuilds_on_request(
    api: Api, week: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", api.engine.url.render_as_string(hide_password=False))
    # The command runs on the real clock: yesterday is the real one.
    yesterday = utcnow().astimezone(TZ).date() - timedelta(days=1)
    res = CliRunner().invoke(main, ["stats", "refresh"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    first = json.loads(res.output.strip().splitlines()[-1])
    assert first["rolled_through"] == yesterday.isoformat()
    assert first["first_day"] == "2026-11-24"
    # Nothing changed since: nothing to recompute; --from/--to recomputes those days.
    again = json.loads(CliRunner().invoke(main, ["stats", "refresh"]).output.splitlines()[-1])
    assert again["days"] == 0
    ranged = CliRunner().invoke(
        main, ["stats", "refresh", "--from", "2026-11-25", "--to", "2026-11-27"]
    )
    assert json.loads(ranged.output.splitlines()[-1])["days"] == 3
    assert _assert_rollup_equals_live(api, _periods(("2026-11-24", "2026-11-30")), [Scope()]) > 0
    assert _department_week(api, "CGJ") == CGJ
    bad = CliRunner().invoke(main, ["stats", "refresh", "--from", "24/11/2026"])
    assert bad.exit_code == 2
    assert "YYYY-MM-DD" in bad.output
    with Session(api.engine) as session:
        rows_before = session.execute(select(func.count()).select_from(StatsDaily)).scalar_one()
    backwards = CliRunner().invoke(
        main, ["stats", "refresh", "--from", "2026-11-30", "--to", "2026-11-24"]
    )
    assert backwards.exit_code == 2
    assert "is after --to" in backwards.output
    with Session(api.engine) as session:
        rows_after = session.execute(select(func.count()).select_from(StatsDaily)).scalar_one()
    assert rows_after == rows_before  # refused before anything ran


def test_scheduler_refreshes_the_rollup_every_five_minutes(api: Api, week: str) -> None:
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    scheduler = start_scheduler(runtime)
    try:
        job = scheduler.get_job("stats_rollup")
        assert job is not None
        assert job.func is stats_job
        assert job.trigger.interval.total_seconds() == 300
        assert (job.max_instances, job.coalesce) == (1, True)
        job.func(*job.args, **job.kwargs)  # one tick, on the app's clock (2 December)
    finally:
        scheduler.shutdown(wait=False)
    assert _state(api).rolled_through == date(2026, 12, 1)
    assert _assert_rollup_equals_live(api, _periods(("2026-11-24", "2026-11-30")), [Scope()]) > 0
