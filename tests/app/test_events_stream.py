"""`GET /v1/events/stream` (server-sent events) under a real uvicorn: a change reaches the
listeners who may see it within 2 s, and no one else; a reconnecting listener catches up from
`Last-Event-ID`; the console's cookie signs a stream in. SQLite and PostGIS."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.engine import Engine

from app.main import create_app
from core.db import make_engine
from core.settings import Settings
from tests.conftest import Api, FakeClock, new_client_id
from tests.live import running

Point = Callable[[str], tuple[float, float]]
G1 = "440604011001001"
G3 = "440604012001001"  # another town


@pytest.fixture
def server(settings: Settings, engine: Engine, clock: FakeClock) -> Iterator[str]:
    settings = settings.model_copy(update={"stream_poll_seconds": 0.1})
    with running(create_app(settings=settings, engine=engine, clock=clock)) as url:
        yield url


class Listener:
    """Reads one stream in a thread (http.client, not our code); events land in a queue as
    (id, type, data). `close` shuts the socket, so the server sees the hang-up at once."""

    def __init__(self, url: str, headers: dict[str, str], cookies: Any = None) -> None:
        self.events: queue.Queue[tuple[int, str, dict[str, Any]]] = queue.Queue()
        self.status: int | None = None
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        if cookies:
            headers = {**headers, "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        self._headers = {"Accept": "text/event-stream", **headers}
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the stream did not open"

    def _read(self) -> None:
        try:
            self._conn.request("GET", "/v1/events/stream", headers=self._headers)
            res = self._conn.getresponse()
            self.status = res.status
            fields: dict[str, str] = {}
            while line := res.readline():
                text = line.decode().rstrip("\r\n")
                if text.startswith(":"):
                    self._ready.set()
                elif not text:
                    if "data" in fields:
                        self.events.put(
                            (int(fields["id"]), fields["event"], json.loads(fields["data"]))
                        )
                    fields = {}
                else:
                    name, _, value = text.partition(": ")
                    fields[name] = value
        except Exception:  # noqa: BLE001 - hung up by `close`, mid-read: the reader just ends
            pass
        finally:
            self._ready.set()

    def until(self, predicate: Callable[[dict[str, Any]], bool], seconds: float) -> dict[str, Any]:
        ends = time.monotonic() + seconds
        while (left := ends - time.monotonic()) > 0:
            try:
                _, _, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            if predicate(data):
                return data
        raise AssertionError(f"no matching event within {seconds} s")

    def drain(self, seconds: float) -> list[dict[str, Any]]:
        time.sleep(seconds)
        out = []
        while not self.events.empty():
            out.append(self.events.get()[2])
        return out

    def close(self) -> None:
        """Hang up (the server sees the disconnect and drops the listener)."""
        if self._conn.sock is not None:
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()
        self._thread.join(5)
        assert not self._thread.is_alive()


def _report(url: str, api: Api, point: Point, grid: str) -> dict[str, Any]:
    lng, lat = point(grid)
    res = httpx.post(
        f"{url}/v1/reports",
        json={"client_id": new_client_id(), "lat": lat, "lng": lng, "description": "井盖丢失"},
        headers=api.headers(f"gw{grid}"),
    )
    assert res.status_code == 201, res.text
    return dict(res.json())


def _act(url: str, api: Api, case_id: int, action: str) -> None:
    res = httpx.post(
        f"{url}/v1/cases/{case_id}/{action}", json={}, headers=api.headers("dispatcher")
    )
    assert res.status_code == 200, res.text


def test_a_report_reaches_the_centre_within_two_seconds(
    server: str, api: Api, demo_points: Point
) -> None:
    listener = Listener(server, api.headers("dispatcher"))
    try:
        assert listener.status == 200
        started = time.monotonic()
        case = _report(server, api, demo_points, G1)
        event = listener.until(lambda d: d["case_id"] == case["id"], 2.0)
        assert time.monotonic() - started < 2.0
        assert event["status"] == "reported"
        assert event["case_no"] == case["case_no"]
        assert set(event) == {"seq", "case_id", "case_no", "action", "status", "at"}
        _act(server, api, case["id"], "register")
        nxt = listener.until(lambda d: d["case_id"] == case["id"], 2.0)
        assert (nxt["status"], nxt["action"]) == ("registered", "register")
        assert nxt["seq"] > event["seq"]
    finally:
        listener.close()


def test_listeners_get_only_what_they_may_see(server: str, api: Api, demo_points: Point) -> None:
    worker = Listener(server, api.headers(f"gw{G3}"))
    try:
        mine = _report(server, api, demo_points, G3)
        other = _report(server, api, demo_points, G1)
        ids = {e["case_id"] for e in worker.drain(1.5)}
        assert mine["id"] in ids
        assert other["id"] not in ids
    finally:
        worker.close()
    unit = Listener(server, api.headers(f"dept-{mine['department_code'].lower()}"))
    try:
        _act(server, api, mine["id"], "register")
        assert unit.drain(1.0) == []  # not the unit's case yet
        _act(server, api, mine["id"], "dispatch")
        got = unit.drain(1.5)
        assert [e["status"] for e in got if e["case_id"] == mine["id"]] == ["dispatched"]
        assert all(e["case_id"] != other["id"] for e in got)
    finally:
        unit.close()


def test_a_reconnecting_listener_catches_up_from_last_event_id(
    server: str, api: Api, demo_points: Point
) -> None:
    first = Listener(server, api.headers("dispatcher"))
    try:
        case = _report(server, api, demo_points, G1)
        seen = first.until(lambda d: d["case_id"] == case["id"], 2.0)
    finally:
        first.close()
    missed = [_report(server, api, demo_points, G1)["id"] for _ in range(3)]
    again = Listener(server, {**api.headers("dispatcher"), "Last-Event-ID": str(seen["seq"])})
    try:
        got = again.drain(1.0)
        assert [e["case_id"] for e in got] == missed
        assert all(e["seq"] > seen["seq"] for e in got)
    finally:
        again.close()


def test_the_console_cookie_opens_a_stream_and_nothing_else_does(
    server: str, api: Api, demo_points: Point
) -> None:
    res = httpx.post(
        f"{server}/v1/auth/session", data={"username": "dispatcher", "password": "gridgov-demo"}
    )
    assert res.status_code == 200, res.text
    listener = Listener(server, {}, cookies=dict(res.cookies))
    try:
        case = _report(server, api, demo_points, G1)
        listener.until(lambda d: d["case_id"] == case["id"], 2.0)
    finally:
        listener.close()
    anonymous = httpx.get(f"{server}/v1/events/stream")
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "missing_token")


@pytest.mark.parametrize("backend", ["postgis"], indirect=True)
def test_a_change_through_another_process_reaches_the_listener(
    settings: Settings, engine: Engine, clock: FakeClock, api: Api, demo_points: Point
) -> None:
    """Two services on one PostgreSQL (each with its own engine, as two processes would have):
    what is filed through one reaches the listeners of the other."""
    fast = settings.model_copy(update={"stream_poll_seconds": 0.1})
    other_engine = make_engine(settings.database_url, settings=settings)
    try:
        with (
            running(create_app(settings=fast, engine=engine, clock=clock)) as first,
            running(create_app(settings=fast, engine=other_engine, clock=clock)) as second,
        ):
            listener = Listener(first, api.headers("dispatcher"))
            try:
                started = time.monotonic()
                cases = [_report(second, api, demo_points, G1) for _ in range(5)]
                for case in cases:
                    listener.until(lambda d, c=case: d["case_id"] == c["id"], 2.0)
                assert time.monotonic() - started < 2.0 + 5 * 0.5
            finally:
                listener.close()
    finally:
        other_engine.dispose()
