"""The WeChat API client against a fake api.weixin.qq.com: one access token for every process,
refreshed ahead of expiry, and once (with the call tried again) when WeChat refuses it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from channels.wechat.api import WechatApi, WechatApiError, api_from
from channels.wechat.outbound_models import WechatAccessToken
from core.db import make_engine, session_scope
from core.settings import Settings
from tests.channels.fake_wechat import TEMPLATE_ID, FakeWechat, fake_wechat, wechat_settings
from tests.conftest import FakeClock


@pytest.fixture
def fake() -> Iterator[FakeWechat]:
    with fake_wechat() as server:
        yield server


@pytest.fixture
def settings(backend: tuple[str, str], fake: FakeWechat) -> Settings:
    return wechat_settings(backend[1], fake)


def _api(settings: Settings, engine: Engine, clock: FakeClock) -> WechatApi:
    api = api_from(settings, engine, clock=clock)
    assert api is not None
    return api


def _send(api: WechatApi, openid: str = "o-resident-1") -> str | None:
    return api.send_template(
        openid=openid, template_id=TEMPLATE_ID, data={"case_no": "20261202000001"}
    )


def test_the_token_is_fetched_once_and_shared_by_every_client(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeWechat
) -> None:
    first, second = _api(settings, engine, clock), _api(settings, engine, clock)
    token = first.token()
    assert second.token() == token
    _send(first)
    _send(second)
    assert fake.token_requests == 1
    assert len(fake.templates) == 2
    with session_scope(engine) as session:
        row = session.execute(select(WechatAccessToken)).scalar_one()
        assert row.expires_at == clock.now + timedelta(seconds=7200)
        assert row.lease_token is None


def test_the_token_is_refreshed_ahead_of_its_expiry(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeWechat
) -> None:
    api = _api(settings, engine, clock)
    old = api.token()
    clock.advance(seconds=7200 - 301)  # refresh ahead: 300 s
    assert api.token() == old
    clock.advance(seconds=2)
    new = api.token()
    assert new != old
    assert fake.token_requests == 2
    assert _send(api) is not None


@pytest.mark.parametrize("code", [40001, 42001])
def test_a_refused_token_is_refreshed_once_and_the_call_tried_again(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeWechat, code: int
) -> None:
    api = _api(settings, engine, clock)
    api.token()
    if code == 42001:
        fake.expire_token()  # WeChat dropped it early: 42001 for the token it issued
    else:
        fake.fail("/cgi-bin/message/template/send", ("errcode", 40001))
    assert _send(api) is not None
    assert fake.token_requests == 2
    assert len(fake.templates) == 1


def test_a_token_refused_twice_is_an_error_not_a_loop(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeWechat
) -> None:
    api = _api(settings, engine, clock)
    fake.fail("/cgi-bin/message/template/send", ("errcode", 40001), ("errcode", 40001))
    with pytest.raises(WechatApiError) as refused:
        _send(api)
    assert refused.value.errcode == 40001
    assert fake.token_requests == 2
    assert fake.templates == []


def test_clients_on_two_engines_asking_at_once_make_one_token_request(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeWechat
) -> None:
    """Two processes' worth of clients (each its own engine and HTTP client) start together
    while WeChat is slow: one asks, the other waits for the stored answer."""
    fake.token_delay = 0.5
    other_engine = make_engine(settings=settings)
    try:
        apis = [_api(settings, engine, clock), _api(settings, other_engine, clock)]
        barrier = threading.Barrier(len(apis))
        got: list[str] = []

        def ask(api: WechatApi) -> None:
            barrier.wait()
            got.append(api.token())

        threads = [threading.Thread(target=ask, args=(api,)) for api in apis]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        other_engine.dispose()
    assert len(got) == 2
    assert got[0] == got[1]
    assert fake.token_requests == 1


def test_a_dead_refreshers_lease_runs_out_and_another_takes_over(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeWechat
) -> None:
    dead, alive = _api(settings, engine, clock), _api(settings, engine, clock)
    assert dead._claim(clock.now, stale=None) is not None  # then it is killed
    assert alive._claim(clock.now, stale=None) is None  # the lease holds
    clock.advance(seconds=31)
    assert alive.token()
    assert fake.token_requests == 1


def test_a_wrong_secret_is_reported_and_leaves_the_row_unleased(
    settings: Settings, engine: Engine, clock: FakeClock, fake: FakeWechat
) -> None:
    api = _api(settings.model_copy(update={"wechat_app_secret": "wrong"}), engine, clock)
    with pytest.raises(WechatApiError) as refused:
        api.token()
    assert refused.value.errcode == 40125
    with session_scope(engine) as session:
        row = session.execute(select(WechatAccessToken)).scalar_one()
        assert (row.token, row.lease_token) == (None, None)


def test_not_configured_means_no_client(settings: Settings, engine: Engine) -> None:
    assert api_from(settings.model_copy(update={"wechat_appid": None}), engine, clock=None) is None  # type: ignore[arg-type]
