"""Status pushes to WeChat residents: template messages through the one outbox, for the events a
resident should know, to every resident who reported the case or a case merged into it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from channels.wechat import push
from channels.wechat.outbound_models import WechatPush
from core.db import session_scope
from core.settings import Settings
from dispatch.models import Case
from notify.models import OutboxDelivery, SubscriptionKind, WebhookSubscription
from tests.channels.fake_wechat import (
    TEMPLATE_FIELD_MAX,
    TEMPLATE_ID,
    FakeWechat,
    fake_wechat,
    resident_case,
    wechat_settings,
)
from tests.conftest import Api
from tests.notify.helpers import GRID, act, deliver, report, subscribe
from tests.notify.receiver import receiver

Point = Callable[[str], tuple[float, float]]
SEND = "/cgi-bin/message/template/send"


@pytest.fixture
def fake() -> Iterator[FakeWechat]:
    with fake_wechat() as server:
        yield server


@pytest.fixture
def settings(backend: tuple[str, str], fake: FakeWechat) -> Settings:
    return wechat_settings(backend[1], fake)


def case_no(api: Api, case_id: int) -> str:
    with session_scope(api.engine) as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.case_no


def wechat_deliveries(api: Api) -> list[OutboxDelivery]:
    with session_scope(api.engine) as session:
        return list(
            session.exec(
                select(OutboxDelivery)
                .join(
                    WebhookSubscription,
                    col(WebhookSubscription.id) == col(OutboxDelivery.subscription_id),
                )
                .where(col(WebhookSubscription.kind) == SubscriptionKind.WECHAT)
                .order_by(col(OutboxDelivery.id))
            )
        )


def fields(message: dict[str, object]) -> dict[str, str]:
    data = message["data"]
    assert isinstance(data, dict)
    return {key: value["value"] for key, value in data.items()}


def department_of(api: Api, case_id: int) -> str:
    with session_scope(api.engine) as session:
        case = session.get(Case, case_id)
        assert case is not None
        return f"dept-{case.department_code.lower()}"


def test_each_status_a_resident_should_know_is_pushed_once(
    api: Api, demo_points: Point, fake: FakeWechat
) -> None:
    case_id = resident_case(api, demo_points, "o-resident-a")
    number = case_no(api, case_id)
    dept = department_of(api, case_id)
    steps = [
        ("dispatcher", "register", {}, "已立案"),
        ("dispatcher", "dispatch", {}, None),
        (dept, "accept", {}, None),
        (dept, "resolve", {"note": "已补装井盖"}, "已反馈"),
        (f"gw{GRID}", "verify", {"passed": True}, None),
        ("dispatcher", "close", {}, "已结案"),
    ]
    told: list[str] = []
    for who, action, body, status in steps:
        act(api, who, case_id, action, body)
        deliver(api)
        if status is not None:
            told.append(status)
        got = fake.sent_to("o-resident-a")
        assert [fields(m)["status"] for m in got] == told, action
    for message in fake.templates:
        values = fields(message)
        assert set(values) == {"case_no", "status", "time", "remark"}
        assert values["case_no"] == number
        assert all(len(v) <= TEMPLATE_FIELD_MAX and "\n" not in v for v in values.values())
        assert message["template_id"] == TEMPLATE_ID
    assert fields(fake.templates[0])["time"] == api.clock.now.astimezone(
        ZoneInfo("Asia/Shanghai")
    ).strftime("%Y-%m-%d %H:%M")
    # reported, dispatched, accepted, verified are not a resident's business: no delivery.
    assert [d.status for d in wechat_deliveries(api)] == ["delivered"] * 3
    deliver(api)
    assert len(fake.templates) == 3


def test_a_rejection_tells_the_reason_within_the_field_limit(
    api: Api, demo_points: Point, fake: FakeWechat
) -> None:
    case_id = resident_case(api, demo_points, "o-resident-r")
    reason = "该处井盖属于燃气公司产权，\n已转燃气公司热线处理，请拨打96833咨询"
    act(api, "dispatcher", case_id, "reject", {"reason": reason})
    deliver(api)
    (message,) = fake.sent_to("o-resident-r")
    values = fields(message)
    assert values["status"] == "不予立案"
    assert values["remark"].startswith("原因：该处井盖属于燃气公司产权")
    assert len(values["remark"]) == TEMPLATE_FIELD_MAX
    assert values["remark"].endswith("…")
    assert "\n" not in values["remark"]


def test_a_merge_tells_the_merged_cases_reporter_the_surviving_case(
    api: Api, demo_points: Point, fake: FakeWechat
) -> None:
    first = resident_case(api, demo_points, "o-first")
    second = resident_case(api, demo_points, "o-second", "门口井盖没了，同一个井盖")
    act(api, "dispatcher", second, "merge", {"into_case_id": first, "reason": "同一井盖"})
    deliver(api)
    assert fake.sent_to("o-first") == []
    (merged,) = fake.sent_to("o-second")
    assert fields(merged)["status"] == "已并单"
    assert fields(merged)["remark"] == f"已并入{case_no(api, first)}"
    assert fields(merged)["case_no"] == case_no(api, second)
    # From now on the merged case's reporter follows the surviving case.
    act(api, "dispatcher", first, "register")
    deliver(api)
    for openid in ("o-first", "o-second"):
        last = fake.sent_to(openid)[-1]
        assert fields(last)["case_no"] == case_no(api, first)
        assert fields(last)["status"] == "已立案"


def test_a_retry_tells_only_the_residents_not_told_yet(
    api: Api, demo_points: Point, fake: FakeWechat
) -> None:
    first = resident_case(api, demo_points, "o-first")
    second = resident_case(api, demo_points, "o-second", "门口井盖没了，同一个井盖")
    act(api, "dispatcher", second, "merge", {"into_case_id": first, "reason": "同一井盖"})
    deliver(api)
    act(api, "dispatcher", first, "register")
    fake.fail(SEND, 503)  # the first resident's message fails, the second's goes
    assert deliver(api)["failed_attempts"] == 1
    assert [fields(m)["status"] for m in fake.sent_to("o-second")] == ["已并单", "已立案"]
    assert fake.sent_to("o-first") == []
    deliver(api)  # not due yet: the outbox's backoff
    assert fake.sent_to("o-first") == []
    api.clock.advance(seconds=20)
    assert deliver(api)["delivered"] == 1
    assert [fields(m)["status"] for m in fake.sent_to("o-first")] == ["已立案"]
    assert len(fake.sent_to("o-second")) == 2
    last = wechat_deliveries(api)[-1]
    assert (last.status, last.attempts) == ("delivered", 2)


def test_a_resident_who_unfollowed_is_recorded_not_retried(
    api: Api, demo_points: Point, fake: FakeWechat
) -> None:
    case_id = resident_case(api, demo_points, "o-gone")
    fake.unsubscribed.add("o-gone")
    act(api, "dispatcher", case_id, "register")
    assert deliver(api)["delivered"] == 1
    assert fake.templates == []
    with session_scope(api.engine) as session:
        (row,) = session.exec(select(WechatPush)).all()
        assert row.openid == "o-gone"
        assert row.error is not None
        assert "43004" in row.error


def test_wechat_down_is_retried_with_the_outbox_backoff(
    api: Api, demo_points: Point, fake: FakeWechat
) -> None:
    case_id = resident_case(api, demo_points, "o-resident-a")
    act(api, "dispatcher", case_id, "register")
    fake.fail(SEND, 500, ("errcode", -1), ("errcode", 40037))  # down, busy, a bad template id
    assert deliver(api)["failed_attempts"] == 1
    api.clock.advance(seconds=20)
    assert deliver(api)["failed_attempts"] == 1
    (pending,) = wechat_deliveries(api)
    assert pending.status == "pending"
    assert "-1" in (pending.last_error or "")
    api.clock.advance(seconds=40)
    assert deliver(api)["failed_attempts"] == 1
    api.clock.advance(seconds=80)
    assert deliver(api)["delivered"] == 1
    assert len(fake.sent_to("o-resident-a")) == 1


def test_grid_workers_cases_make_no_wechat_delivery_and_webhooks_work_as_before(
    api: Api, demo_points: Point, fake: FakeWechat
) -> None:
    with receiver() as hook:
        subscribe(api, hook.url)
        worker_case = report(api, demo_points)
        act(api, "dispatcher", worker_case, "register")
        resident = resident_case(api, demo_points, "o-resident-a")
        act(api, "dispatcher", resident, "register")
        deliver(api)  # a case's events go one at a time, in order
        deliver(api)
        assert sorted((r.json["case"]["id"], r.json["type"]) for r in hook.accepted()) == [
            (worker_case, "case.registered"),
            (worker_case, "case.reported"),
            (resident, "case.registered"),
            (resident, "case.reported"),
        ]
        assert all(r.signed_by("receiver-secret-0123456789") for r in hook.accepted())
    assert [d.case_id for d in wechat_deliveries(api)] == [resident]
    assert len(fake.templates) == 1
    listed = api.get("admin", "/v1/webhooks").json()["items"]
    assert [item["url"] for item in listed] == [hook.url]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("短句", "短句"),
        ("第一行\r\n第二行\t第三行", "第一行 第二行 第三行"),
        ("一" * 20, "一" * 20),
        ("一" * 21, "一" * 19 + "…"),
        ("  两端空白  ", "两端空白"),
    ],
)
def test_template_fields_are_one_line_of_at_most_twenty_characters(
    text: str, expected: str
) -> None:
    assert push.field_value(text) == expected
