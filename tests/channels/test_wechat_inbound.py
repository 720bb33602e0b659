"""The WeChat webhook (`/wechat`) as WeChat calls it: every message signed and (safe mode)
encrypted by wechatpy, every reply decrypted and parsed by wechatpy. Both backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.main import create_app
from app.scheduler import wechat_messages_job
from channels.wechat.models import WechatDraft, WechatMessage
from core.settings import Settings
from dispatch.models import Case
from events.models import Report
from grid.coords import wgs84_to_gcj02
from tests.channels import wechat_peer as wx
from tests.conftest import FakeClock

GRID = "440604011001001"


@pytest.fixture
def wechat_settings(settings: Settings) -> Settings:
    return settings.model_copy(update=wx.WECHAT_SETTINGS)


@pytest.fixture
def wechat_client(
    wechat_settings: Settings, engine: Engine, clock: FakeClock
) -> Iterator[TestClient]:
    app = create_app(settings=wechat_settings, engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _unix(clock: FakeClock) -> int:
    return int(clock.now.timestamp())


@pytest.fixture
def peer(wechat_client: TestClient, clock: FakeClock) -> wx.Peer:
    return wx.Peer(wechat_client, lambda: _unix(clock), safe=True)


@pytest.fixture
def plain(wechat_client: TestClient, clock: FakeClock) -> wx.Peer:
    return wx.Peer(wechat_client, lambda: _unix(clock), safe=False)


@pytest.fixture
def spot(demo_points: Callable[[str], tuple[float, float]]) -> tuple[float, float]:
    """(lat, lng) in GCJ-02, as WeChat sends a location inside the demo grid."""
    lng, lat = wgs84_to_gcj02(*demo_points(GRID))
    return lat, lng


def _count(engine: Engine, table: Any) -> int:
    with Session(engine) as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


def _stored(engine: Engine) -> tuple[int, int, int, int]:
    """(cases, reports, messages, drafts)."""
    return (
        _count(engine, Case),
        _count(engine, Report),
        _count(engine, WechatMessage),
        _count(engine, WechatDraft),
    )


def _case(engine: Engine, case_no: str) -> Case:
    with Session(engine) as s:
        return s.execute(select(Case).where(Case.case_no == case_no)).scalar_one()


# --- the URL check ---------------------------------------------------------------------------


def test_url_check_echoes_echostr_when_signed(wechat_client: TestClient, clock: FakeClock) -> None:
    ts, nonce = str(_unix(clock)), "1514711492"
    params = {
        "signature": wx.sign(wx.TOKEN, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": "5837397749983527231",
    }
    res = wechat_client.get("/wechat", params=params)
    assert res.status_code == 200
    assert res.text == "5837397749983527231"
    assert res.headers["content-type"].startswith("text/plain")


def test_url_check_with_wrong_signature_is_403(wechat_client: TestClient, clock: FakeClock) -> None:
    ts, nonce = str(_unix(clock)), "1514711492"
    params = {
        "signature": wx.sign("another-token", ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": "x",
    }
    res = wechat_client.get("/wechat", params=params)
    assert res.status_code == 403
    assert res.json()["error"] == "wechat_signature_invalid"


def test_webhook_is_404_when_the_account_is_not_configured(client: TestClient) -> None:
    res = client.post("/wechat", params={"timestamp": "1", "nonce": "n"}, content=b"<xml/>")
    assert res.status_code == 404
    assert res.json()["error"] == "wechat_not_configured"


# --- conversations, both modes ---------------------------------------------------------------


def test_plain_mode_location_then_text_makes_a_case(
    plain: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    user = wx.openid()
    asked = plain.say(wx.location(user, *spot, at=plain.now(), label="石湾镇街道某路口"))
    assert asked is not None
    assert "已收到位置" in asked
    assert "描述" in asked
    reply = plain.say(wx.text(user, "路口井盖丢失，晚上很危险", at=plain.now()))
    case = _case(engine, wx.case_no_in(reply))
    assert case.channel == "wechat"
    assert case.grid_code == GRID  # GCJ-02 placed after conversion
    assert case.description == "路口井盖丢失，晚上很危险"
    with Session(engine) as s:
        report = s.execute(select(Report).where(Report.case_id == case.id)).scalar_one()
    assert report.reporter_identity == user
    assert report.user_id is None


def test_safe_mode_text_then_location_makes_a_case(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    user = wx.openid()
    asked = peer.say(wx.text(user, "小区门口垃圾堆积好几天没人清运", at=peer.now()))
    assert asked is not None
    assert "位置" in asked
    reply = peer.say(wx.location(user, *spot, at=peer.now()))
    assert "上报成功" in (reply or "")
    assert _case(engine, wx.case_no_in(reply)).grid_code == GRID
    # The reply went out encrypted: no plaintext in the body.
    raw = peer.sent[-1].text
    assert "<Encrypt>" in raw
    assert "上报" not in raw


def test_voice_recognition_is_the_description(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    user = wx.openid()
    peer.say(wx.location(user, *spot, at=peer.now()))
    reply = peer.say(wx.voice(user, "路灯不亮了晚上一片漆黑", at=peer.now()))
    assert _case(engine, wx.case_no_in(reply)).description == "路灯不亮了晚上一片漆黑"
    unheard = peer.say(wx.voice(wx.openid(), "", at=peer.now()))
    assert "语音" in (unheard or "")


def test_descriptions_in_several_messages_are_joined(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine, clock: FakeClock
) -> None:
    user = wx.openid()
    peer.say(wx.text(user, "马路中间有个大坑", at=peer.now()))
    clock.advance(minutes=5)
    peer.say(wx.text(user, "电动车差点摔倒", at=peer.now()))
    reply = peer.say(wx.location(user, *spot, at=peer.now()))
    assert _case(engine, wx.case_no_in(reply)).description == "马路中间有个大坑；电动车差点摔倒"


def test_a_stale_draft_is_forgotten(
    peer: wx.Peer, spot: tuple[float, float], clock: FakeClock
) -> None:
    user = wx.openid()
    peer.say(wx.text(user, "路边树倒了", at=peer.now()))
    clock.advance(hours=3)  # past GRIDGOV_WECHAT_DRAFT_EXPIRY_SECONDS (2 h)
    reply = peer.say(wx.location(user, *spot, at=peer.now()))
    assert reply is not None
    assert "已收到位置" in reply


def test_location_outside_the_district_is_refused_and_the_description_kept(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    user = wx.openid()
    cases = _count(engine, Case)
    peer.say(wx.text(user, "河涌有死鱼漂浮，水面发黑", at=peer.now()))
    refused = peer.say(wx.location(user, 39.9087, 116.3975, at=peer.now(), label="北京"))
    assert refused is not None
    assert "不在本区服务范围" in refused
    assert _count(engine, Case) == cases
    reply = peer.say(wx.location(user, *spot, at=peer.now()))
    assert _case(engine, wx.case_no_in(reply)).description == "河涌有死鱼漂浮，水面发黑"


def test_subscribe_is_welcomed_and_unsubscribe_gets_no_reply(peer: wx.Peer) -> None:
    user = wx.openid()
    welcome = peer.say(wx.event(user, "subscribe", at=peer.now()))
    assert welcome is not None
    assert "位置" in welcome
    assert "进度" in welcome
    assert peer.say(wx.event(user, "unsubscribe", at=peer.now() + 1)) is None
    assert peer.sent[-1].text == "success"


def test_unknown_message_types_are_answered_politely(peer: wx.Peer) -> None:
    xml = wx._xml(
        {
            "ToUserName": wx.ACCOUNT,
            "FromUserName": wx.openid(),
            "CreateTime": peer.now(),
            "MsgType": "video",
            "MediaId": "m1",
            "ThumbMediaId": "t1",
            "MsgId": wx.msg_id(),
        }
    )
    reply = peer.say(xml)
    assert reply is not None
    assert "暂不支持" in reply


def test_reply_is_well_formed_even_for_hostile_text(
    plain: wx.Peer, spot: tuple[float, float]
) -> None:
    user = wx.openid()
    reply = plain.say(wx.text(user, "]]><xml>&amp;", at=plain.now()))
    assert reply is not None  # parsed by wechatpy
    assert "位置" in reply


# --- commands -----------------------------------------------------------------------------


def test_progress_lists_the_residents_cases_only(
    peer: wx.Peer, spot: tuple[float, float], clock: FakeClock
) -> None:
    user, other = wx.openid(), wx.openid()
    assert "还没有" in (peer.say(wx.text(user, "进度", at=peer.now())) or "")
    mine = []
    for description in ("井盖丢失很危险", "垃圾堆积没人清运"):
        peer.say(wx.location(user, *spot, at=peer.now()))
        mine.append(wx.case_no_in(peer.say(wx.text(user, description, at=peer.now()))))
        clock.advance(minutes=1)
    peer.say(wx.location(other, *spot, at=peer.now()))
    theirs = wx.case_no_in(peer.say(wx.text(other, "路灯坏了", at=peer.now())))
    listed = peer.say(wx.text(user, "查询", at=peer.now()))
    assert listed is not None
    assert all(no in listed for no in mine)
    assert theirs not in listed
    assert "待受理" in listed
    assert user not in listed


def test_cancel_drops_the_draft(peer: wx.Peer, spot: tuple[float, float], engine: Engine) -> None:
    user = wx.openid()
    peer.say(wx.text(user, "店铺门口乱堆杂物", at=peer.now()))
    assert "已取消" in (peer.say(wx.text(user, "取消", at=peer.now())) or "")
    assert "没有正在填写" in (peer.say(wx.text(user, "取消", at=peer.now())) or "")
    cases = _count(engine, Case)
    asked = peer.say(wx.location(user, *spot, at=peer.now()))  # the description is gone
    assert "描述" in (asked or "")
    assert _count(engine, Case) == cases


def test_daily_limit_per_resident(
    wechat_settings: Settings,
    peer: wx.Peer,
    spot: tuple[float, float],
    engine: Engine,
    clock: FakeClock,
) -> None:
    user = wx.openid()
    limit = wechat_settings.wechat_daily_report_limit
    for i in range(limit):
        peer.say(wx.location(user, *spot, at=peer.now()))
        assert "上报成功" in (peer.say(wx.text(user, f"第{i}个问题：垃圾", at=peer.now())) or "")
    cases = _count(engine, Case)
    peer.say(wx.location(user, *spot, at=peer.now()))
    over = peer.say(wx.text(user, "又一个问题：垃圾", at=peer.now()))
    assert "上限" in (over or "")
    assert _count(engine, Case) == cases
    # The draft is kept: a correction is still refused today, as is the same text again.
    assert "上限" in (peer.say(wx.location(user, *spot, at=peer.now())) or "")
    # Another resident is not limited.
    other = wx.openid()
    peer.say(wx.location(other, *spot, at=peer.now()))
    assert "上报成功" in (peer.say(wx.text(other, "垃圾没人清运", at=peer.now())) or "")
    # The next local day (GRIDGOV_TIMEZONE) the resident may report again.
    clock.advance(days=1)
    peer.say(wx.location(user, *spot, at=peer.now()))
    assert "上报成功" in (peer.say(wx.text(user, "垃圾又堆起来了", at=peer.now())) or "")


# --- once per message ---------------------------------------------------------------------


def test_the_same_msgid_three_times_makes_one_case_and_one_reply(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    user = wx.openid()
    peer.say(wx.location(user, *spot, at=peer.now()))
    xml = wx.text(user, "共享单车堵住了消防通道", at=peer.now(), mid="880000000000000001")
    before = _count(engine, Case)
    replies = [peer.say(xml) for _ in range(3)]
    assert len(set(replies)) == 1
    wx.case_no_in(replies[0])
    assert _count(engine, Case) == before + 1
    # An event's retries (no MsgId: FromUserName + CreateTime) are one too.
    sub = wx.event(wx.openid(), "subscribe", at=peer.now())
    messages = _count(engine, WechatMessage)
    assert len({peer.say(sub) for _ in range(3)}) == 1
    assert _count(engine, WechatMessage) == messages + 1


# --- refusals: nothing stored ------------------------------------------------------------------


def test_wrong_signature_is_refused_with_nothing_stored(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    user = wx.openid()
    before = _stored(engine)
    params, body = peer.call(wx.location(user, *spot, at=peer.now()))
    for forged in (
        {**params, "msg_signature": wx.sign("wrong", params["timestamp"], params["nonce"])},
        {**params, "signature": "0" * 40},
        {k: v for k, v in params.items() if k != "msg_signature"},
    ):
        res = peer.client.post("/wechat", params=forged, content=body.encode())
        assert res.status_code == 403, res.text
        assert res.json()["error"] == "wechat_signature_invalid"
    plain_params = {k: v for k, v in params.items() if k not in ("encrypt_type", "msg_signature")}
    res = peer.client.post(
        "/wechat",
        params={**plain_params, "signature": wx.sign("wrong", "1", "2")},
        content=wx.text(user, "x", at=peer.now()).encode(),
    )
    assert res.status_code == 403
    assert _stored(engine) == before


def test_wrong_appid_is_refused_with_nothing_stored(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    before = _stored(engine)
    stranger = wx.Peer(peer.client, peer.now, safe=True, appid="wx0000000000000000")
    res = stranger.post(wx.location(wx.openid(), *spot, at=peer.now()))
    assert res.status_code == 403
    assert res.json()["error"] == "wechat_appid_mismatch"
    assert _stored(engine) == before


def test_old_timestamp_is_refused_with_nothing_stored(
    peer: wx.Peer, plain: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    before = _stored(engine)
    for sender in (peer, plain):
        for offset in (-301, 301, -86_400):
            res = sender.post(
                wx.location(wx.openid(), *spot, at=peer.now()), timestamp=peer.now() + offset
            )
            assert res.status_code == 403
            assert res.json()["error"] == "wechat_stale_timestamp"
    assert _stored(engine) == before
    # Within the window it is accepted.
    res = peer.post(wx.text(wx.openid(), "x", at=peer.now()), timestamp=peer.now() - 299)
    assert res.status_code == 200


def test_previous_key_is_accepted_and_the_reply_uses_the_current_key(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    user = wx.openid()
    rotating = wx.Peer(peer.client, peer.now, safe=True, aes_key=wx.OLD_AES_KEY)
    res = rotating.post(wx.location(user, *spot, at=peer.now()))
    assert res.status_code == 200
    assert "已收到位置" in (wx.read_reply(res.text, safe=True, aes_key=wx.AES_KEY) or "")
    unknown = wx.Peer(peer.client, peer.now, safe=True, aes_key=wx.encoding_aes_key("other"))
    before = _stored(engine)
    res = unknown.post(wx.text(user, "x", at=peer.now()))
    assert res.status_code == 400
    assert res.json()["error"] == "wechat_message_invalid"
    assert _stored(engine) == before


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY a "aaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
 <!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
 <!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]>
<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>o6_bmbomb</FromUserName>
<CreateTime>{at}</CreateTime><MsgType>text</MsgType><Content>&i;</Content>
<MsgId>990000000000000001</MsgId></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>o6_bmxxe</FromUserName>
<CreateTime>{at}</CreateTime><MsgType>text</MsgType><Content>&x;</Content>
<MsgId>990000000000000002</MsgId></xml>"""


@pytest.mark.parametrize("hostile", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["bomb", "xxe"])
def test_hostile_xml_is_refused_unexpanded_in_both_modes(
    peer: wx.Peer, plain: wx.Peer, engine: Engine, hostile: str
) -> None:
    before = _stored(engine)
    for sender in (plain, peer):  # the outer body, then inside <Encrypt>
        res = sender.post(hostile.format(at=peer.now()))
        assert res.status_code == 400, res.text
        assert res.json()["error"] == "wechat_message_invalid"
        assert "root:" not in res.text
    assert _stored(engine) == before


def test_bodies_are_capped(plain: wx.Peer, wechat_settings: Settings, engine: Engine) -> None:
    before = _stored(engine)
    big = wx.text(wx.openid(), "长" * wechat_settings.wechat_max_body_bytes, at=plain.now())
    res = plain.post(big)
    assert res.status_code == 413
    assert _stored(engine) == before


def test_a_sender_that_is_no_openid_is_refused(plain: wx.Peer, engine: Engine) -> None:
    before = _stored(engine)
    for sender in ("o" * 129, "o6_bm\nabc", "o6_bm\tabc"):
        res = plain.post(wx.text(sender, "井盖丢失", at=plain.now()))
        assert res.status_code == 400
        assert res.json()["error"] == "wechat_message_invalid"
    assert _stored(engine) == before


@pytest.fixture
def impatient(wechat_settings: Settings, engine: Engine, clock: FakeClock) -> Iterator[wx.Peer]:
    """The service waiting at most 0.3 s for a database lock."""
    hurried = wechat_settings.model_copy(update={"lock_timeout_seconds": 0.3})
    app = create_app(settings=hurried, engine=engine, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield wx.Peer(client, lambda: _unix(clock))


def test_a_busy_database_gets_an_apology_and_the_retry_is_handled(
    impatient: wx.Peer, engine: Engine, backend: tuple[str, str], spot: tuple[float, float]
) -> None:
    user = wx.openid()
    xml = wx.location(user, *spot, at=impatient.now())
    before = _stored(engine)
    # Another writer holds what the message needs (PostgreSQL: the message table; SQLite:
    # the database's write slot) for longer than the lock timeout.
    with engine.connect() as holder:
        if backend[0] == "postgis":
            holder.exec_driver_sql("LOCK TABLE wechat_message IN EXCLUSIVE MODE")
        else:
            holder.exec_driver_sql("DELETE FROM wechat_message WHERE 1 = 0")
        res = impatient.post(xml)
        holder.rollback()
    assert res.status_code == 200
    assert "系统繁忙" in (wx.read_reply(res.text, safe=True) or "")
    assert _stored(engine) == before  # nothing of the message was kept
    # WeChat (or the resident) sends it again: handled now.
    assert "已收到位置" in (impatient.say(xml) or "")


def test_handled_messages_are_forgotten_after_a_day(
    peer: wx.Peer, engine: Engine, clock: FakeClock, wechat_client: TestClient
) -> None:
    before = _count(engine, WechatMessage)
    peer.say(wx.text(wx.openid(), "进度", at=peer.now()))
    clock.advance(hours=23)
    peer.say(wx.text(wx.openid(), "进度", at=peer.now()))
    runtime = wechat_client.app.state.runtime  # type: ignore[attr-defined]
    wechat_messages_job(runtime)
    assert _count(engine, WechatMessage) == before + 2
    clock.advance(hours=2)
    wechat_messages_job(runtime)
    assert _count(engine, WechatMessage) == before + 1
