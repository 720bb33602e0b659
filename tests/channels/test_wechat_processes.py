"""Two service processes (uvicorn) on one PostgreSQL database receive the same WeChat messages
at the same moment, as when WeChat retries into another process behind a load balancer: each
message has one effect (one case), and every copy gets the same reply."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from core.clock import utcnow
from grid.coords import wgs84_to_gcj02
from tests.channels import wechat_peer as wx
from tests.conftest import ROOT, SECRET, OwnApp

pytestmark = pytest.mark.parametrize("backend", ["postgis"], indirect=True)

GRID = "440604011001001"
RESIDENTS = 12


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def servers(own_app: OwnApp, tmp_path: Path) -> Iterator[list[str]]:
    """Two `uvicorn app.main:app_from_env` processes on the test's database."""
    env = {
        **os.environ,
        "GRIDGOV_DATABASE_URL": own_app.url,
        "GRIDGOV_SECRET_KEY": SECRET,
        "GRIDGOV_SCHEDULER": "0",
        "GRIDGOV_LOCK_TIMEOUT_SECONDS": "30",
        "GRIDGOV_STATEMENT_TIMEOUT_SECONDS": "40",
        **{f"GRIDGOV_{k.upper()}": v for k, v in wx.WECHAT_SETTINGS.items()},
    }
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for n in range(2):
            port = _free_port()
            log = (tmp_path / f"server{n}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "app.main:app_from_env", "--factory"]
                    + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=log,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url in zip(procs, urls, strict=True):
            _wait_until_up(proc, url)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def _wait_until_up(proc: subprocess.Popen[bytes], url: str) -> None:
    """Until the process answers /healthz (bounded: 90 s); this waits for a process to start."""
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


def _wait_for_lock_waiters(own_app: OwnApp, count: int) -> None:
    """Until `count` sessions of the test's database wait for a lock (bounded: 60 s)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 60
    with own_app.engine.connect() as probe:
        while probe.execute(query).scalar_one() < count:
            probe.rollback()
            assert time.monotonic() < deadline, "the servers never reached the lock"
            time.sleep(0.05)


def _peer(url: str) -> wx.Peer:
    return wx.Peer(httpx.Client(base_url=url, timeout=60), lambda: int(utcnow().timestamp()))


def test_the_same_messages_sent_to_two_processes_at_once_make_one_case_each(
    own_app: OwnApp,
    servers: list[str],
    demo_points: Callable[[str], tuple[float, float]],
) -> None:
    lng, lat = wgs84_to_gcj02(*demo_points(GRID))
    peers = [_peer(url) for url in servers]
    residents = [wx.openid() for _ in range(RESIDENTS)]
    now = peers[0].now()
    for n, user in enumerate(residents):  # each one's location, through either process
        assert "已收到位置" in (peers[n % 2].say(wx.location(user, lat, lng, at=now)) or "")
    texts = [wx.text(user, "路口井盖丢失，很危险", at=now) for user in residents]

    # Every text goes to both processes at once. The test holds the message table, so both
    # copies of each are inside their transactions and waiting before any of them goes on.
    with own_app.engine.connect() as holder:
        holder.execute(text("LOCK TABLE wechat_message IN EXCLUSIVE MODE"))
        with ThreadPoolExecutor(max_workers=2 * RESIDENTS) as pool:
            futures = [pool.submit(peers[side].post, xml) for xml in texts for side in range(2)]
            _wait_for_lock_waiters(own_app, 2 * RESIDENTS)
            holder.rollback()
            answers = [f.result() for f in futures]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    replies = [wx.read_reply(a.text, safe=True) for a in answers]
    for n in range(RESIDENTS):
        first, second = replies[2 * n], replies[2 * n + 1]
        assert first == second
        assert "上报成功" in (first or "")
    # WeChat's third try, later, to either process: the same reply again.
    third = [wx.read_reply(peers[1].post(xml).text, safe=True) for xml in texts]
    assert third == replies[::2]

    with own_app.engine.connect() as conn:
        cases = conn.execute(
            text(
                "SELECT reporter_identity, count(*) FROM report WHERE channel = 'wechat' "
                "GROUP BY reporter_identity"
            )
        ).all()
        filed = conn.execute(
            text("SELECT count(*) FROM wechat_message WHERE case_id IS NOT NULL")
        ).scalar_one()
        total = conn.execute(
            text("SELECT count(*) FROM gg_case WHERE channel = 'wechat'")
        ).scalar_one()
    assert sorted(c for _, c in cases) == [1] * RESIDENTS
    assert {r for r, _ in cases} == set(residents)
    assert filed == RESIDENTS
    assert total == RESIDENTS
