"""Residents' photos: queued by the webhook, fetched from the (fake) media API with retries before
they expire, stored as attachments and linked to the case their draft became."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from sqlmodel import col, select

from app.cli import main
from channels.wechat import media as wechat_media
from channels.wechat.api import WechatApi, api_from
from channels.wechat.outbound_models import WechatMedia
from core.clock import utcnow
from core.db import make_engine, session_scope
from core.settings import Settings
from media.models import Attachment, AttachmentLink
from media.service import Limits, Storage
from tests.channels.fake_wechat import FakeWechat, fake_wechat, resident_case, wechat_settings
from tests.conftest import SECRET, Api, OwnApp

Point = Callable[[str], tuple[float, float]]
GET = "/cgi-bin/media/get"
OPENID = "o-resident-photo"
GRIDGOV = str(Path(sys.executable).with_name("gridgov"))


@pytest.fixture
def fake() -> Iterator[FakeWechat]:
    with fake_wechat() as server:
        yield server


@pytest.fixture
def settings(backend: tuple[str, str], fake: FakeWechat, tmp_path: Path) -> Settings:
    return wechat_settings(backend[1], fake, attachment_dir=str(tmp_path / "attachments"))


def jpeg(colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG")
    return out.getvalue()


def wechat(api: Api) -> WechatApi:
    runtime_api = api.client.app.state.runtime.wechat  # type: ignore[attr-defined]
    assert isinstance(runtime_api, WechatApi)
    return runtime_api


def fetch(api: Api, settings: Settings) -> dict[str, int]:
    return wechat_media.fetch_due(
        api.engine,
        api=wechat(api),
        storage=Storage(Path(settings.attachment_dir or "")),
        limits=Limits(),
        now=api.clock.now,
    )


def queue(api: Api, media_id: str, msg_id: str, *, draft_id: str | None = "draft-1") -> None:
    with session_scope(api.engine) as session:
        wechat_media.queue_media(
            session,
            openid=OPENID,
            media_id=media_id,
            msg_id=msg_id,
            draft_id=draft_id,
            now=api.clock.now,
        )


def rows(api: Api) -> list[WechatMedia]:
    with session_scope(api.engine) as session:
        return list(session.exec(select(WechatMedia).order_by(col(WechatMedia.id))))


def links(api: Api, case_id: int) -> list[AttachmentLink]:
    with session_scope(api.engine) as session:
        return list(
            session.exec(select(AttachmentLink).where(col(AttachmentLink.case_id) == case_id))
        )


def attach(api: Api, case_id: int, draft_id: str = "draft-1") -> int:
    with session_scope(api.engine) as session:
        return wechat_media.attach_to_case(
            session, openid=OPENID, draft_id=draft_id, case_id=case_id, now=api.clock.now
        )


def test_a_photo_failing_twice_is_fetched_then_linked_to_the_drafts_case(
    api: Api, settings: Settings, fake: FakeWechat, demo_points: Point
) -> None:
    fake.media["M1"] = ("image/jpeg", jpeg())
    fake.fail(GET, 500, ("errcode", -1))
    queue(api, "M1", "msg-1")
    case_id = resident_case(api, demo_points, OPENID)
    assert attach(api, case_id) == 1  # the draft became a case before the photo arrived
    assert fetch(api, settings) == {"claimed": 1, "stored": 0, "retrying": 1, "failed": 0}
    assert fetch(api, settings)["claimed"] == 0  # backoff: not due yet
    api.clock.advance(seconds=40)
    assert fetch(api, settings)["retrying"] == 1
    api.clock.advance(seconds=80)
    assert fetch(api, settings)["stored"] == 1
    (row,) = rows(api)
    assert (row.status, row.attempts, row.case_id, row.linked) == ("stored", 3, case_id, True)
    (link,) = links(api, case_id)
    assert (link.attachment_id, link.purpose) == (row.attachment_id, "report")
    with session_scope(api.engine) as session:
        attachment = session.get(Attachment, row.attachment_id)
        assert attachment is not None
        assert (attachment.channel, attachment.identity) == ("wechat", OPENID)
        assert (attachment.width, attachment.height) == (64, 48)
    assert fake.hits[GET] == 3
    assert fake.media_requests == ["M1"]  # the third: the first two failed before reading it
    assert fetch(api, settings)["claimed"] == 0  # never fetched twice


def test_a_photo_fetched_before_its_case_is_linked_when_the_draft_is_filed(
    api: Api, settings: Settings, fake: FakeWechat, demo_points: Point
) -> None:
    fake.media["M1"] = ("image/jpeg", jpeg())
    queue(api, "M1", "msg-1")
    queue(api, "M1", "msg-1")  # WeChat's retry of the same message queues nothing more
    queue(api, "M2", "msg-2", draft_id="an-older-cancelled-draft")
    assert fetch(api, settings)["claimed"] == 2
    (first, other) = rows(api)
    assert (first.status, first.linked) == ("stored", False)
    assert other.status == "failed"  # M2 is unknown to WeChat: 40007, not tried again
    case_id = resident_case(api, demo_points, OPENID)
    assert attach(api, case_id) == 1
    assert [link.attachment_id for link in links(api, case_id)] == [first.attachment_id]


def test_an_expired_media_id_is_marked_failed_without_a_request(
    api: Api, settings: Settings, fake: FakeWechat
) -> None:
    fake.media["M1"] = ("image/jpeg", jpeg())
    queue(api, "M1", "msg-1")
    api.clock.advance(days=3)
    assert fetch(api, settings) == {"claimed": 0, "stored": 0, "retrying": 0, "failed": 0}
    (row,) = rows(api)
    assert row.status == "failed"
    assert "expired" in (row.last_error or "")
    assert fake.media_requests == []
    with session_scope(api.engine) as session:
        (listed,) = wechat_media.queue_state(session, failed_only=True)
        assert listed["status"] == "failed"


def test_retries_back_off_and_give_up_before_expiry(
    api: Api, settings: Settings, fake: FakeWechat
) -> None:
    fake.fail(GET, *([503] * 500))
    queue(api, "M1", "msg-1")
    queued_at = api.clock.now
    tries = 0
    while rows(api)[0].status == "pending":
        api.clock.now = max(api.clock.now, rows(api)[0].next_attempt_at)
        fetch(api, settings)
        tries += 1
        assert tries < 200
    (row,) = rows(api)
    assert row.status == "failed"
    assert row.last_error is not None
    assert "HTTP 503" in row.last_error
    assert row.done_at is not None
    assert row.done_at < queued_at + timedelta(days=3)
    assert 60 < row.attempts == fake.hits[GET]  # at most an hour apart


def test_trouble_getting_the_token_is_retried_not_a_lost_photo(
    api: Api, settings: Settings, fake: FakeWechat
) -> None:
    fake.media["M1"] = ("image/jpeg", jpeg())
    fake.fail("/cgi-bin/token", ("errcode", 40164))  # the server's address not whitelisted yet
    queue(api, "M1", "msg-1")
    assert fetch(api, settings)["retrying"] == 1
    assert "40164" in (rows(api)[0].last_error or "")
    api.clock.advance(seconds=40)
    assert fetch(api, settings)["stored"] == 1


def test_bytes_that_are_not_an_accepted_image_fail_with_the_reason(
    api: Api, settings: Settings, fake: FakeWechat
) -> None:
    fake.media["M1"] = ("image/jpeg", b"<html><script>alert(1)</script></html>")
    queue(api, "M1", "msg-1")
    assert fetch(api, settings)["failed"] == 1
    (row,) = rows(api)
    assert row.status == "failed"
    assert row.attachment_id is None
    assert row.last_error


def test_two_workers_never_fetch_one_photo_twice(
    api: Api, settings: Settings, fake: FakeWechat
) -> None:
    for n in range(12):
        fake.media[f"M{n}"] = ("image/jpeg", jpeg(("red", "blue", "green")[n % 3]))
        queue(api, f"M{n}", f"msg-{n}")
    other = make_engine(settings=settings)
    try:
        other_api = api_from(settings, other, clock=api.clock)
        assert other_api is not None
        workers = [(api.engine, wechat(api)), (other, other_api)]
        barrier = threading.Barrier(2)

        def work(engine: object, client: WechatApi) -> None:
            barrier.wait()
            wechat_media.drain(
                engine,  # type: ignore[arg-type]
                api=client,
                storage=Storage(Path(settings.attachment_dir or "")),
                limits=Limits(),
                clock=api.clock,
                policy=wechat_media.MediaPolicy(batch=3),
            )

        threads = [threading.Thread(target=work, args=w) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        other.dispose()
    assert sorted(fake.media_requests) == sorted(f"M{n}" for n in range(12))
    assert {r.status for r in rows(api)} == {"stored"}
    assert fake.token_requests == 1


def test_the_cli_fetches_what_is_due(
    own_app: OwnApp, fake: FakeWechat, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "GRIDGOV_WECHAT_APPID": settings.wechat_appid,
        "GRIDGOV_WECHAT_APP_SECRET": settings.wechat_app_secret,
        "GRIDGOV_WECHAT_API_BASE": fake.url,
        "GRIDGOV_ATTACHMENT_DIR": settings.attachment_dir,
    }.items():
        monkeypatch.setenv(name, value or "")
    fake.media["M1"] = ("image/jpeg", jpeg())
    with session_scope(own_app.engine) as session:  # queued now: the command uses the real clock
        wechat_media.queue_media(
            session, openid=OPENID, media_id="M1", msg_id="msg-1", draft_id="d", now=utcnow()
        )
    result = CliRunner().invoke(main, ["wechat", "fetch-media"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["stored"] == 1
    listed = CliRunner().invoke(main, ["wechat", "media"])
    assert json.loads(listed.output.splitlines()[0])["status"] == "stored"
    monkeypatch.delenv("GRIDGOV_WECHAT_APP_SECRET")
    refused = CliRunner().invoke(main, ["wechat", "fetch-media"])
    assert refused.exit_code == 2


def test_two_processes_fetching_at_once_share_one_token_and_never_fetch_twice(
    own_app: OwnApp, fake: FakeWechat, settings: Settings
) -> None:
    """Two `gridgov wechat fetch-media` processes start together on a slow WeChat: one token
    request in all, every photo downloaded once."""
    fake.token_delay = 0.5
    for n in range(10):
        fake.media[f"M{n}"] = ("image/jpeg", jpeg(("red", "blue")[n % 2]))
    with session_scope(own_app.engine) as session:
        for n in range(10):
            wechat_media.queue_media(
                session, openid=OPENID, media_id=f"M{n}", msg_id=f"m{n}", draft_id="d", now=utcnow()
            )
    env = {
        **os.environ,
        "GRIDGOV_DATABASE_URL": own_app.url,
        "GRIDGOV_SECRET_KEY": SECRET,
        "GRIDGOV_WECHAT_APPID": settings.wechat_appid or "",
        "GRIDGOV_WECHAT_APP_SECRET": settings.wechat_app_secret or "",
        "GRIDGOV_WECHAT_API_BASE": fake.url,
        "GRIDGOV_ATTACHMENT_DIR": settings.attachment_dir or "",
    }
    procs = [
        subprocess.Popen(
            [GRIDGOV, "wechat", "fetch-media"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    stored = sum(json.loads(out.strip().splitlines()[-1])["stored"] for out, _ in outputs)
    assert stored == 10
    assert fake.token_requests == 1
    assert sorted(fake.media_requests) == sorted(f"M{n}" for n in range(10))
