"""Intake without an account: a reporter is (channel, identity on it, optional account), and every
channel files through the same `events.service.intake` as the HTTP API."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from core.db import session_scope
from core.errors import GridgovError
from dispatch import service as dispatch_service
from dispatch.models import Case, Channel
from events import service as events_service
from events.models import Report
from events.reporters import cases_of_reporter, reporters_of
from events.schemas import ReportIn
from events.service import Reporter
from tests.conftest import SECRET, Api
from tests.events.reports import counts, report_body

OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
OTHER_OPENID = "o6_bmjrAAAA_2sgVt7hMZOPfZZZ"
Point = Callable[[str], tuple[float, float]]


def _wechat(openid: str = OPENID) -> Reporter:
    return Reporter(Channel.WECHAT, openid)


def _file(api: Api, reporter: Reporter, body: dict[str, Any]) -> tuple[int, bool]:
    """One delivery through the intake seam, in a transaction of its own: (case id, created)."""
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with session_scope(api.engine) as session:
        case, created = events_service.intake(
            session,
            report=ReportIn.model_validate(body),
            reporter=reporter,
            now=api.clock.now,
            ctx=runtime.intake_context(),
        )
        assert case.id is not None
        return case.id, created


def _report_row(api: Api, case_id: int) -> Report:
    with Session(api.engine) as s:
        return s.execute(select(Report).where(col(Report.case_id) == case_id)).scalar_one()


def _audit_problems(api: Api) -> list[Any]:
    with Session(dispatch_service.audit_reader(api.engine)) as s:
        problems, _ = dispatch_service.verify_audit(s, key=SECRET)
    return problems


def test_wechat_message_without_an_account_becomes_a_wechat_case(
    api: Api, demo_points: Point
) -> None:
    body = report_body(demo_points, client_id="24536456345634")  # a WeChat MsgId
    case_id, created = _file(api, _wechat(), body)
    assert created
    case = api.get("dispatcher", f"/v1/cases/{case_id}").json()
    assert case["channel"] == "wechat"
    assert case["category_code"] == "06"
    reported = case["history"][0]
    assert (reported["action"], reported["actor_role"]) == ("report", "wechat")
    assert reported["actor"] == "wechat:o6_b…"  # the openid itself stays in the report
    listed = api.get("dispatcher", "/v1/cases", params={"channel": "wechat", "limit": 200})
    assert case_id in [c["id"] for c in listed.json()["items"]]
    others = api.get("dispatcher", "/v1/cases", params={"channel": "grid_worker", "limit": 200})
    assert case_id not in [c["id"] for c in others.json()["items"]]
    row = _report_row(api, case_id)
    assert (row.channel, row.reporter_identity, row.user_id) == ("wechat", OPENID, None)
    with Session(api.engine) as s:
        assert s.get(Case, case_id).reporter_id is None  # type: ignore[union-attr]
    assert _audit_problems(api) == []


def test_a_retried_delivery_finds_its_case(api: Api, demo_points: Point) -> None:
    body = report_body(demo_points)
    first = _file(api, _wechat(), body)
    before = counts(api)
    again = _file(api, _wechat(), body)
    assert (first[1], again) == (True, (first[0], False))
    assert counts(api) == before


def test_same_message_id_with_another_payload_is_a_conflict_and_stores_nothing(
    api: Api, demo_points: Point
) -> None:
    body = report_body(demo_points)
    _file(api, _wechat(), body)
    before = counts(api)
    with pytest.raises(GridgovError) as refused:
        _file(api, _wechat(), {**body, "description": "另一件事：路灯不亮"})
    assert refused.value.code == "client_id_conflict"
    assert counts(api) == before


def test_same_message_id_from_two_senders_makes_two_cases(api: Api, demo_points: Point) -> None:
    body = report_body(demo_points)
    a, created_a = _file(api, _wechat(OPENID), body)
    b, created_b = _file(api, _wechat(OTHER_OPENID), body)
    assert (created_a, created_b) == (True, True)
    assert a != b


def test_same_message_id_on_two_channels_makes_two_cases(api: Api, demo_points: Point) -> None:
    body = report_body(demo_points)
    a, _ = _file(api, _wechat("app-1"), body)
    b, created = _file(api, Reporter(Channel.OPEN311, "app-1"), body)
    assert created
    assert a != b
    assert api.get("dispatcher", f"/v1/cases/{b}").json()["channel"] == "open311"


def test_parallel_deliveries_of_one_message_make_one_case(api: Api, demo_points: Point) -> None:
    """Real threads, each its own transaction: on PostgreSQL the later insert waits on the
    unique key until the first commits, then is answered as the resend it is."""
    body = report_body(demo_points)
    copies = 4
    barrier = threading.Barrier(copies)
    outcomes: list[tuple[int, bool]] = []
    failures: list[BaseException] = []

    def deliver() -> None:
        barrier.wait()
        try:
            outcomes.append(_file(api, _wechat(), body))
        except BaseException as exc:  # collected: the assertion below names it
            failures.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    assert sorted(created for _, created in outcomes) == [False] * (copies - 1) + [True]
    assert len({case_id for case_id, _ in outcomes}) == 1
    with Session(api.engine) as s:
        keyed = s.execute(select(Report).where(col(Report.client_id) == body["client_id"])).all()
    assert len(keyed) == 1
    assert _audit_problems(api) == []


def test_dispatcher_and_grid_worker_reports_carry_their_channel_and_account(
    api: Api, demo_points: Point
) -> None:
    worker = api.post("gw440604011001001", "/v1/reports", report_body(demo_points)).json()
    centre = api.post("dispatcher", "/v1/reports", report_body(demo_points)).json()
    assert (worker["channel"], centre["channel"]) == ("grid_worker", "dispatcher")
    for case in (worker, centre):
        row = _report_row(api, case["id"])
        assert row.channel == case["channel"]
        assert row.user_id is not None
        assert row.reporter_identity == str(row.user_id)
    filed = api.get("dispatcher", f"/v1/cases/{centre['id']}").json()["history"][0]
    assert (filed["actor_role"], filed["actor"]) == ("dispatcher", "指挥中心调度员")


@pytest.mark.parametrize(
    "identity", ["", " o6_b", "o6_b\n", "o6\x00b", "o6_\ud800", "o" * 129], ids=repr
)
def test_a_bad_reporter_identity_is_refused_and_stores_nothing(
    api: Api, demo_points: Point, identity: str
) -> None:
    before = counts(api)
    with pytest.raises(GridgovError) as refused:
        _file(api, _wechat(identity), report_body(demo_points))
    assert (refused.value.status_code, refused.value.code) == (422, "invalid_reporter")
    assert counts(api) == before


def test_account_channels_need_an_account() -> None:
    with pytest.raises(ValueError, match="account"):
        Reporter(Channel.GRID_WORKER, "42")
    with pytest.raises(ValueError, match="account"):
        Reporter(Channel.DISPATCHER, "7")


def _merge(api: Api, case_id: int, into: int) -> Any:
    return api.post(
        "dispatcher", f"/v1/cases/{case_id}/merge", {"into_case_id": into, "reason": "同一问题"}
    )


def test_reporters_of_a_case_are_its_reporters_in_order(api: Api, demo_points: Point) -> None:
    case_id, _ = _file(api, _wechat(), report_body(demo_points))
    with Session(api.engine) as s:
        assert reporters_of(s, case_id) == [("wechat", OPENID)]


def test_merged_cases_reporters_follow_the_surviving_case(api: Api, demo_points: Point) -> None:
    """并单 chains: c merged into b, b into a; a's reporters are all three, each once."""
    a, _ = _file(api, _wechat(OPENID), report_body(demo_points))
    api.clock.advance(minutes=5)
    b, _ = _file(api, Reporter(Channel.OPEN311, "app-1"), report_body(demo_points))
    api.clock.advance(minutes=5)
    c, _ = _file(api, _wechat(OTHER_OPENID), report_body(demo_points))
    api.clock.advance(minutes=5)
    d, _ = _file(api, _wechat(OPENID), report_body(demo_points))  # the first resident again
    assert _merge(api, c, b).status_code == 200
    assert _merge(api, b, a).status_code == 200
    assert _merge(api, d, a).status_code == 200
    with Session(api.engine) as s:
        assert reporters_of(s, a) == [
            ("wechat", OPENID),
            ("open311", "app-1"),
            ("wechat", OTHER_OPENID),
        ]
        assert reporters_of(s, b) == [("open311", "app-1"), ("wechat", OTHER_OPENID)]
        assert reporters_of(s, c) == [("wechat", OTHER_OPENID)]
        followed = cases_of_reporter(s, channel="wechat", identity=OTHER_OPENID)
        assert [x.id for x in followed] == [a]
        # d (newest) and a both lead to a: shown once.
        assert [x.id for x in cases_of_reporter(s, channel="wechat", identity=OPENID)] == [a]


def test_cases_of_reporter_are_newest_first_and_limited(api: Api, demo_points: Point) -> None:
    ids = []
    for _ in range(3):
        ids.append(_file(api, _wechat(), report_body(demo_points))[0])
        api.clock.advance(minutes=1)
    _file(api, _wechat(OTHER_OPENID), report_body(demo_points))
    with Session(api.engine) as s:
        mine = cases_of_reporter(s, channel="wechat", identity=OPENID)
        assert [x.id for x in mine] == ids[::-1]
        two = cases_of_reporter(s, channel="wechat", identity=OPENID, limit=2)
        assert [x.id for x in two] == ids[:0:-1]
        assert cases_of_reporter(s, channel="open311", identity=OPENID) == []
        assert cases_of_reporter(s, channel="wechat", identity=OPENID, limit=0) == []
