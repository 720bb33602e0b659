"""Hard to break (issue 6, items 1 and 5): a hot case cannot stall the service, and a failing
database answers 503 `unavailable` and recovers by itself.

Real servers (uvicorn in a thread on 127.0.0.1) and real parallel clients; the outage tests run
on their own PostgreSQL database behind a TCP proxy that the test cuts and black-holes. Every
wait is bounded; the timeouts here are real ones, kept short by the settings. The tests assert
what is answered, not how fast: bench/hot_case.py measures the times.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.deps import SessionDep
from app.main import create_app
from app.migrate import upgrade
from app.scheduler import sweep_job
from core import db as core_db
from core.db import make_engine, session_scope
from core.models import Role, User
from core.settings import Settings
from tests.conftest import (
    SECRET,
    Api,
    FakeClock,
    _drop_postgis,
    _postgis_url,
    new_client_id,
)

GRID = "440604011001001"
# PostGIS only (SQLSTATEs and statement_timeout are PostgreSQL's).
POSTGIS_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgis", marks=pytest.mark.postgis)], indirect=True
)
WORKER = f"gw{GRID}"


def _tuned(url: str, **overrides: Any) -> Settings:
    """Short real timeouts, so the bounds show within the test's time."""
    values: dict[str, Any] = {
        "database_url": url,
        "secret_key": SECRET,
        "grid_refresh_seconds": 0.0,
        "lock_timeout_seconds": 1.0,
        "statement_timeout_seconds": 1.0,
        "db_connect_timeout_seconds": 2.0,
        "pool_timeout_seconds": 1.0,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def _serve(app: FastAPI) -> Iterator[str]:
    """The app under a real uvicorn in a background thread; yields its base URL."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _case_awaiting_verify(api: Api, point: Callable[[str], tuple[float, float]]) -> int:
    lng, lat = point(GRID)
    res = api.post(
        WORKER,
        "/v1/reports",
        {"client_id": new_client_id(), "lat": lat, "lng": lng, "description": "井盖丢失"},
    )
    assert res.status_code == 201, res.text
    cid: int = res.json()["id"]
    for who, action, body in (
        ("dispatcher", "register", {}),
        ("dispatcher", "dispatch", {}),
        ("dept-cgj", "accept", {}),
        ("dept-cgj", "resolve", {"note": "已补装井盖"}),
    ):
        res = api.post(who, f"/v1/cases/{cid}/{action}", body)
        assert res.status_code == 200, (action, res.text)
    return cid


# The 100 parallel clients run in a process of their own, as real clients would: in the
# server's process their threads would compete with it for the GIL and time themselves.
_BURST = """
import json, sys, threading, httpx
base, path, token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
headers = {"Authorization": "Bearer " + token}
client = httpx.Client(base_url=base, timeout=20, limits=httpx.Limits(max_connections=n))
warm = [threading.Thread(target=client.get, args=("/healthz",)) for _ in range(n)]
for t in warm: t.start()
for t in warm: t.join(20)
go = threading.Barrier(n)
answers = []
def act():
    go.wait(20)
    r = client.post(path, json={"passed": True}, headers=headers)
    answers.append([r.status_code, r.json().get("error"), r.headers.get("retry-after")])
threads = [threading.Thread(target=act) for _ in range(n)]
print("ready", flush=True)
sys.stdin.readline()
for t in threads: t.start()
for t in threads: t.join(20)
print(json.dumps(answers), flush=True)
"""


def test_hundred_parallel_actions_on_one_case_leave_other_users_served(
    api: Api, backend: tuple[str, str], demo_points: Any
) -> None:
    """While 100 clients press on one case that another process holds, another user is
    served; when it lets go exactly one action wins and the others are refused (409). How
    fast the other user is served meanwhile is measured by bench/hot_case.py."""
    cid = _case_awaiting_verify(api, demo_points)
    settings = _tuned(backend[1], lock_timeout_seconds=3.0, statement_timeout_seconds=4.0)
    engine = make_engine(settings=settings)
    app = create_app(settings=settings, engine=engine, clock=api.clock)
    turns = app.state.runtime.case_turns
    other = {"Authorization": f"Bearer {api.token('dispatcher')}"}
    try:
        with _serve(app) as base, httpx.Client(base_url=base, timeout=15) as client:
            assert client.get("/v1/cases?limit=20", headers=other).status_code == 200
            path = f"/v1/cases/{cid}/verify"
            burst = subprocess.Popen(
                [sys.executable, "-c", _BURST, base, path, api.token(WORKER), "100"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert burst.stdin is not None
            assert burst.stdout is not None
            try:
                ready, _, _ = select.select([burst.stdout], [], [], 20)
                assert ready, "the clients did not get ready"
                assert burst.stdout.readline().strip() == "ready"
                with _lock_held_elsewhere(backend, cid):
                    burst.stdin.write("go\n")
                    burst.stdin.flush()
                    # The burst has reached the server: the case has a holder and a queue.
                    assert _until(lambda: len(turns) == 1), "the burst did not arrive"
                    res = client.get("/v1/cases?limit=20", headers=other)
                    assert len(turns) == 1  # still pressed: nobody could act meanwhile
                assert res.status_code == 200, res.text
                assert cid in [case["id"] for case in res.json()["items"]]
                out, _ = burst.communicate(timeout=40)
            finally:
                burst.kill()
    finally:
        engine.dispose()
    answers = json.loads(out)
    assert len(answers) == 100
    statuses = sorted(status for status, _, _ in answers)
    assert statuses.count(200) == 1, statuses
    refused = [(status, code, retry) for status, code, retry in answers if status != 200]
    assert {status for status, _, _ in refused} == {409}, refused
    assert {code for _, code, _ in refused} <= {"illegal_transition", "busy"}
    assert all(retry == "1" for _, code, retry in refused if code == "busy")
    history = api.get("dispatcher", f"/v1/cases/{cid}").json()["history"]
    assert [h["action"] for h in history].count("verify") == 1


def _until(condition: Callable[[], bool], *, seconds: float = 10.0) -> bool:
    """Poll a condition another thread or process makes true; False when it never does."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@contextlib.contextmanager
def _lock_held_elsewhere(backend: tuple[str, str], cid: int) -> Iterator[None]:
    """Another process holds the case: its row lock (PostgreSQL) or the write lock (SQLite)."""
    name, url = backend
    if name == "sqlite":
        import sqlite3

        conn = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    other = make_engine(url)
    try:
        with other.connect() as conn, conn.begin():
            conn.execute(text("SELECT id FROM gg_case WHERE id = :id FOR UPDATE"), {"id": cid})
            yield
    finally:
        other.dispose()


def test_action_on_a_case_locked_elsewhere_answers_busy_with_retry_after(
    api: Api, backend: tuple[str, str], demo_points: Any
) -> None:
    cid = _case_awaiting_verify(api, demo_points)
    settings = _tuned(backend[1], lock_timeout_seconds=0.5)
    engine = make_engine(settings=settings)
    app = create_app(settings=settings, engine=engine, clock=api.clock)
    headers = {"Authorization": f"Bearer {api.token(WORKER)}"}
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            with _lock_held_elsewhere(backend, cid):
                # Answered while the other side still holds the case: the wait gave up.
                res = client.post(f"/v1/cases/{cid}/verify", json={"passed": True}, headers=headers)
            assert (res.status_code, res.json()["error"]) == (409, "busy"), res.text
            assert res.headers["Retry-After"] == "1"
            # Nothing changed; once the other side lets go, the same action goes through.
            res = client.post(f"/v1/cases/{cid}/verify", json={"passed": True}, headers=headers)
            assert res.status_code == 200, res.text
    finally:
        engine.dispose()


def test_case_turn_waiting_longer_than_the_lock_timeout_is_busy(
    api: Api, backend: tuple[str, str]
) -> None:
    """One request per case at a time: the next waits in the event loop, then gives up."""
    app = create_app(
        settings=_tuned(backend[1], lock_timeout_seconds=0.2), engine=api.engine, clock=api.clock
    )
    runtime = app.state.runtime
    headers = {"Authorization": f"Bearer {api.token(WORKER)}"}
    entered = threading.Event()
    release = threading.Event()

    async def hold_turn() -> None:
        async with runtime.case_turns.take(999_999, timeout=1):
            entered.set()
            while not release.is_set():
                await _async_sleep(0.01)

    with TestClient(app, raise_server_exceptions=False) as client:
        holder = threading.Thread(target=client.portal.call, args=(hold_turn,))
        holder.start()
        assert entered.wait(timeout=5)
        try:
            res = client.post("/v1/cases/999999/accept", json={}, headers=headers)
        finally:
            release.set()
            holder.join(timeout=5)
        assert (res.status_code, res.json()["error"]) == (409, "busy")
        assert res.headers["Retry-After"] == "1"
        assert len(runtime.case_turns) == 0  # nothing left behind
        assert client.post("/v1/cases/999999/accept", json={}, headers=headers).status_code == 404


async def _async_sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


def _sql_route(app: FastAPI, started: threading.Event | None = None) -> None:
    """A route running the SQL it is given, through the request's session (tests only)."""

    @app.post("/test/sql")
    def run_sql(session: SessionDep, body: dict[str, str]) -> dict[str, str]:
        session.execute(text("SELECT 1"))
        if started is not None:
            started.set()
        session.execute(text(body["sql"]))
        return {"status": "ran"}


@POSTGIS_ONLY
@pytest.mark.parametrize(
    ("sqlstate", "status", "code"),
    [
        ("40P01", 409, "busy"),  # deadlock_detected
        ("40001", 409, "busy"),  # serialization_failure
        ("55P03", 409, "busy"),  # lock_not_available (lock_timeout, NOWAIT)
        ("57014", 503, "unavailable"),  # query_canceled (statement_timeout)
        ("57P01", 503, "unavailable"),  # admin_shutdown
        ("53300", 503, "unavailable"),  # too_many_connections
    ],
)
def test_postgres_errors_map_to_busy_or_unavailable_with_retry_after(
    api: Api, backend: tuple[str, str], sqlstate: str, status: int, code: str
) -> None:
    app = create_app(settings=_tuned(backend[1]), engine=api.engine, clock=api.clock)
    _sql_route(app)
    raise_it = f"DO $$ BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = '{sqlstate}'; END $$"
    with TestClient(app, raise_server_exceptions=False) as client:
        res = client.post("/test/sql", json={"sql": raise_it})
    assert (res.status_code, res.json()["error"]) == (status, code), res.text
    assert int(res.headers["Retry-After"]) >= 1


@POSTGIS_ONLY
def test_statement_over_the_timeout_is_cancelled_as_unavailable(
    backend: tuple[str, str], clock: FakeClock
) -> None:
    settings = _tuned(backend[1], statement_timeout_seconds=0.3)
    engine = make_engine(settings=settings)
    app = create_app(settings=settings, engine=engine, clock=clock)
    _sql_route(app)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            # Cancelled: run to its end, pg_sleep(5) would have answered 200.
            res = client.post("/test/sql", json={"sql": "SELECT pg_sleep(5)"})
            assert (res.status_code, res.json()["error"]) == (503, "unavailable")
            assert res.headers["Retry-After"] == "5"
            assert client.post("/test/sql", json={"sql": "SELECT 1"}).status_code == 200
    finally:
        engine.dispose()


class _Proxy:
    """TCP between the app and PostgreSQL: `cut` drops every connection and refuses new ones;
    `blackhole` accepts and keeps connections but forwards nothing (a hung or unreachable
    server); `restore` forwards again."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.mode = "open"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._sockets.extend(socks)

    def _drop_all(self) -> None:
        with self._lock:
            socks, self._sockets = self._sockets, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "cut":
                client.close()
                continue
            self._track(client)
            if self.mode == "blackhole":
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self._track(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                if self.mode == "open":  # black-holed bytes are dropped on the floor
                    dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.mode = "cut"
        self._drop_all()

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def restore(self) -> None:
        self._drop_all()  # black-holed connections are out of step for good
        self.mode = "open"

    def close(self) -> None:
        self._listener.close()
        self._drop_all()


@pytest.fixture
def outage_db() -> Iterator[str]:
    """A database of our own (migrated, one dispatcher): these tests break its connections."""
    url = _postgis_url()
    engine = make_engine(url)
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            session.add(
                User(
                    username="dispatcher",
                    password_hash="!",
                    role=Role.DISPATCHER.value,
                    created_at=datetime(2026, 11, 1, tzinfo=UTC),
                )
            )
        yield url
    finally:
        engine.dispose()
        _drop_postgis(url)


@pytest.mark.postgis
def test_database_outage_answers_503_and_recovers_without_restart(
    outage_db: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused, lost mid-request, black-holed: 503 (a hang would never answer), /readyz 503,
    /healthz 200, the sweep logs and carries on; once the database is back, the same app
    serves again."""
    direct = make_url(outage_db)
    proxy = _Proxy(direct.host or "127.0.0.1", direct.port or 5432)
    url = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = _tuned(url, statement_timeout_seconds=0.5)
    engine = make_engine(settings=settings)
    app = create_app(settings=settings, engine=engine, clock=clock)
    started = threading.Event()
    _sql_route(app, started)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            token = Api(client, engine, clock).token("dispatcher")
            headers = {"Authorization": f"Bearer {token}"}

            def cases() -> httpx.Response:
                return client.get("/v1/cases", headers=headers)

            def unavailable(res: httpx.Response) -> bool:
                return res.status_code == 503 and res.json()["error"] == "unavailable"

            assert cases().status_code == 200
            assert client.get("/readyz").status_code == 200

            # 1. Connections refused and dropped: 503 at once, /readyz too, /healthz stays ok.
            proxy.cut()
            res = cases()
            assert unavailable(res), res.text
            assert res.headers["Retry-After"] == "5"
            ready = client.get("/readyz")
            assert unavailable(ready)
            assert "Retry-After" in ready.headers
            assert client.get("/healthz").status_code == 200
            sweep_job(app.state.runtime)  # logs and returns: the scheduler's next tick retries
            assert "SLA sweep skipped (unavailable" in caplog.text

            proxy.restore()
            assert cases().status_code == 200
            assert client.get("/readyz").status_code == 200

            # 2. Lost in the middle of a request.
            def slow() -> httpx.Response:
                return client.post("/test/sql", json={"sql": "SELECT pg_sleep(0.4)"})

            box: list[httpx.Response] = []
            worker = threading.Thread(target=lambda: box.append(slow()))
            worker.start()
            assert started.wait(timeout=5)
            proxy.cut()
            worker.join(timeout=10)
            assert unavailable(box[0]), box[0].text
            proxy.restore()
            assert cases().status_code == 200

            # 3. Black hole: nothing answers, nothing refuses. Bounded by the client's own
            # timeouts (statement + 1 s per wait, connect timeout), then the pool recovers.
            proxy.blackhole()
            assert unavailable(client.get("/readyz"))
            res = cases()
            assert unavailable(res), res.text
            proxy.restore()
            assert cases().status_code == 200
            assert client.get("/readyz").status_code == 200
    finally:
        engine.dispose()
        proxy.close()


def _backend_pid(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(engine: Any, pid: int) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
    for _ in range(200):  # the server ends the backend asynchronously
        with engine.connect() as conn:
            gone = conn.execute(
                text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar_one()
        if gone:
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} did not end")


@POSTGIS_ONLY
def test_pooled_connection_lost_while_idle_is_replaced_at_checkout(
    backend: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection the server dropped while it sat in the pool is probed and replaced before
    anyone uses it: the next statement succeeds on a new backend."""
    engine = make_engine(backend[1])
    admin = make_engine(backend[1])
    try:
        pid = _backend_pid(engine)
        _terminate(admin, pid)
        monkeypatch.setattr(core_db, "PING_AFTER_IDLE_SECONDS", 0.0)  # "idle long enough"
        assert _backend_pid(engine) != pid
    finally:
        engine.dispose()
        admin.dispose()


@POSTGIS_ONLY
def test_connection_in_steady_use_is_not_probed_and_a_loss_fails_one_request(
    backend: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No probe for a connection used a moment ago (no round trip per request): if it was
    lost, that one request fails as `unavailable`, and the pool replaces its connections so
    that the next one succeeds."""
    monkeypatch.setattr(core_db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    engine = make_engine(backend[1])
    admin = make_engine(backend[1])
    try:
        pid = _backend_pid(engine)
        _terminate(admin, pid)
        with pytest.raises(DBAPIError) as lost:
            _backend_pid(engine)
        trouble = core_db.database_trouble(lost.value)
        assert trouble is not None
        assert trouble.code == "unavailable"
        assert _backend_pid(engine) != pid
    finally:
        engine.dispose()
        admin.dispose()
