"""Photos in a resident's conversation: queued for download (channels.wechat.media) with the
draft they belong to, and given to the case the draft becomes, in whatever order they come."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.main import create_app
from channels.wechat.outbound_models import WechatMedia
from core.settings import Settings
from dispatch.models import Case
from grid.coords import wgs84_to_gcj02
from tests.channels import wechat_peer as wx
from tests.conftest import FakeClock

GRID = "440604011001001"


@pytest.fixture
def peer(settings: Settings, engine: Engine, clock: FakeClock) -> Iterator[wx.Peer]:
    """WeChat (safe mode) in front of the test's service, configured for the account."""
    app = create_app(
        settings=settings.model_copy(update=wx.WECHAT_SETTINGS), engine=engine, clock=clock
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield wx.Peer(client, lambda: int(clock.now.timestamp()))


@pytest.fixture
def spot(demo_points: Callable[[str], tuple[float, float]]) -> tuple[float, float]:
    lng, lat = wgs84_to_gcj02(*demo_points(GRID))
    return lat, lng


def _media(engine: Engine, openid: str) -> list[WechatMedia]:
    with Session(engine) as s:
        return list(
            s.execute(
                select(WechatMedia).where(WechatMedia.openid == openid).order_by(WechatMedia.id)
            ).scalars()
        )


def _case_id(engine: Engine, case_no: str) -> int:
    with Session(engine) as s:
        case_id = s.execute(select(Case.id).where(Case.case_no == case_no)).scalar_one()
    assert case_id is not None
    return int(case_id)


def test_photo_first_then_location_then_text(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    user = wx.openid()
    asked = peer.say(wx.image(user, "media-1", at=peer.now()))
    assert asked is not None
    assert "已收到照片（共 1 张）" in asked
    assert "位置" in asked
    assert "描述" in asked
    # The same photo message retried: one download queued, still one photo.
    retried = wx.image(user, "media-2", at=peer.now(), mid="770000000000000002")
    assert peer.say(retried) == peer.say(retried)
    assert "描述" in (peer.say(wx.location(user, *spot, at=peer.now())) or "")
    reply = peer.say(wx.text(user, "工地渣土车沿路撒漏泥土", at=peer.now()))
    assert "含照片 2 张" in (reply or "")
    case_id = _case_id(engine, wx.case_no_in(reply))
    queued = _media(engine, user)
    assert [m.media_id for m in queued] == ["media-1", "media-2"]
    assert {m.case_id for m in queued} == {case_id}


def test_photo_between_location_and_text(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    user = wx.openid()
    peer.say(wx.location(user, *spot, at=peer.now()))
    assert "描述" in (peer.say(wx.image(user, "media-3", at=peer.now())) or "")
    reply = peer.say(wx.text(user, "绿化带里有人乱扔建筑垃圾", at=peer.now()))
    case_id = _case_id(engine, wx.case_no_in(reply))
    assert [m.case_id for m in _media(engine, user)] == [case_id]


def test_photo_soon_after_the_case_joins_it_and_later_starts_a_new_report(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine, clock: FakeClock
) -> None:
    user = wx.openid()
    peer.say(wx.location(user, *spot, at=peer.now()))
    case_no = wx.case_no_in(peer.say(wx.text(user, "街边大树倾斜有倒伏危险", at=peer.now())))
    clock.advance(minutes=3)
    added = peer.say(wx.image(user, "media-4", at=peer.now()))
    assert added == f"照片已补充到案件 {case_no}。"
    clock.advance(minutes=30)  # past GRIDGOV_WECHAT_PHOTO_WINDOW_SECONDS
    fresh = peer.say(wx.image(user, "media-5", at=peer.now()))
    assert "已收到照片（共 1 张）" in (fresh or "")
    queued = _media(engine, user)
    assert [m.case_id for m in queued] == [_case_id(engine, case_no), None]
    assert queued[1].draft_id != queued[0].draft_id


def test_text_then_photo_then_location(
    peer: wx.Peer, spot: tuple[float, float], engine: Engine
) -> None:
    user = wx.openid()
    assert "位置" in (peer.say(wx.text(user, "小广告贴满了电线杆", at=peer.now())) or "")
    asked = peer.say(wx.image(user, "media-6", at=peer.now()))
    assert asked is not None
    assert "已收到照片（共 1 张）" in asked
    assert "位置" in asked
    reply = peer.say(wx.location(user, *spot, at=peer.now()))
    assert "含照片 1 张" in (reply or "")
    case_id = _case_id(engine, wx.case_no_in(reply))
    assert [m.case_id for m in _media(engine, user)] == [case_id]
