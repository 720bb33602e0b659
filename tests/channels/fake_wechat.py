"""A real HTTP server faking api.weixin.qq.com for the tests (its URL goes in
GRIDGOV_WECHAT_API_BASE): access tokens, temporary media and template messages, as WeChat
answers them, and failures when told to.

Like WeChat, a new access token invalidates the previous one at once, so a process that keeps
its own token breaks the others (what the shared holder must avoid).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core.db import session_scope
from core.settings import Settings
from dispatch.models import Channel
from events.schemas import ReportIn
from events.service import Reporter, intake
from grid.coords import wgs84_to_gcj02
from tests.conftest import SECRET, Api
from tests.notify.helpers import GRID

APPID = "wx0123456789abcdef"
APP_SECRET = "fake-app-secret-0123456789abcdef"
TEMPLATE_ID = "tmpl-case-status-0001"
TEMPLATE_FIELD_MAX = 20


@dataclass
class FakeWechat:
    url: str = ""
    appid: str = APPID
    secret: str = APP_SECRET
    # Seconds a token request takes (to make two askers overlap).
    token_delay: float = 0.0
    expires_in: int = 7200
    token_requests: int = 0
    tokens_issued: list[str] = field(default_factory=list)
    current_token: str | None = None
    # media_id → (content type, bytes); absent: errcode 40007 (invalid or expired media_id).
    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    media_requests: list[str] = field(default_factory=list)
    # Template messages accepted: the JSON bodies.
    templates: list[dict[str, Any]] = field(default_factory=list)
    template_requests: int = 0
    # OpenIDs that unfollowed the account: 43004 (require subscribe).
    unsubscribed: set[str] = field(default_factory=set)
    # Per path, failures to answer next, in order: an int HTTP status (>= 400) or
    # ("errcode", n) for a WeChat error in a 200 answer.
    failures: dict[str, list[Any]] = field(default_factory=dict)
    # Requests per path, failed ones included.
    hits: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, path: str, *answers: Any) -> None:
        with self.lock:
            self.failures.setdefault(path, []).extend(answers)

    def expire_token(self) -> None:
        """WeChat drops the current token early (42001 to whoever still uses it)."""
        with self.lock:
            self.current_token = None

    def sent_to(self, openid: str) -> list[dict[str, Any]]:
        return [t for t in self.templates if t["touser"] == openid]

    # --- the handler's work ---------------------------------------------------------------

    def _failure(self, path: str) -> Any:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            queue = self.failures.get(path)
            return queue.pop(0) if queue else None

    def _token_error(self, token: str | None) -> dict[str, Any] | None:
        with self.lock:
            if token is not None and token == self.current_token:
                return None
            if token in self.tokens_issued:
                return {"errcode": 42001, "errmsg": "access_token expired"}
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}

    def token(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.token_requests += 1
        if query.get("grant_type") != "client_credential":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if query.get("appid") != self.appid or query.get("secret") != self.secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        if self.token_delay:
            time.sleep(self.token_delay)  # a slow WeChat, so concurrent askers overlap
        with self.lock:
            token = f"TOKEN-{len(self.tokens_issued) + 1}-{time.monotonic_ns()}"
            self.tokens_issued.append(token)
            self.current_token = token
        return {"access_token": token, "expires_in": self.expires_in}

    def template(self, query: dict[str, str], body: bytes) -> dict[str, Any]:
        with self.lock:
            self.template_requests += 1
        error = self._token_error(query.get("access_token"))
        if error is not None:
            return error
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return {"errcode": 47001, "errmsg": "data format error"}
        if message.get("template_id") != TEMPLATE_ID:
            return {"errcode": 40037, "errmsg": "invalid template_id"}
        for item in (message.get("data") or {}).values():
            value = item.get("value", "")
            if len(value) > TEMPLATE_FIELD_MAX or "\n" in value or "\r" in value:
                return {"errcode": 47001, "errmsg": "data format error: field too long"}
        if message.get("touser") in self.unsubscribed:
            return {"errcode": 43004, "errmsg": "require subscribe"}
        with self.lock:
            self.templates.append(message)
            msgid = len(self.templates)
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}


@contextmanager
def fake_wechat(**options: Any) -> Iterator[FakeWechat]:
    state = FakeWechat(**options)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, payload: Any, content_type: str) -> None:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, payload: dict[str, Any]) -> None:
            self._answer(200, payload, "application/json; encoding=utf-8")

        def _failed(self, path: str) -> bool:
            failure = state._failure(path)
            if failure is None:
                return False
            if isinstance(failure, int):
                self._answer(failure, b"upstream trouble", "text/html")
            else:
                self._json({"errcode": failure[1], "errmsg": "system error"})
            return True

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if self._failed(parts.path):
                return
            if parts.path == "/cgi-bin/token":
                self._json(state.token(query))
            elif parts.path == "/cgi-bin/media/get":
                media_id = query.get("media_id", "")
                with state.lock:
                    state.media_requests.append(media_id)
                error = state._token_error(query.get("access_token"))
                if error is not None:
                    self._json(error)
                elif media_id not in state.media:
                    self._answer(
                        200, {"errcode": 40007, "errmsg": "invalid media_id"}, "text/plain"
                    )
                else:
                    kind, data = state.media[media_id]
                    self.send_response(200)
                    self.send_header("Content-Type", kind)
                    self.send_header(
                        "Content-disposition", f'attachment; filename="{media_id}.jpg"'
                    )
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
            else:
                self._answer(404, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self._failed(parts.path):
                return
            if parts.path == "/cgi-bin/message/template/send":
                self._json(state.template(query, body))
            else:
                self._answer(404, b"not found", "text/plain")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def wechat_settings(database_url: str, fake: FakeWechat, **more: Any) -> Settings:
    """The tests' settings with the official account pointed at the fake server."""
    return Settings(
        database_url=database_url,
        secret_key=SECRET,
        grid_refresh_seconds=0.0,
        wechat_appid=APPID,
        wechat_app_secret=APP_SECRET,
        wechat_api_base=fake.url,
        wechat_template_id=TEMPLATE_ID,
        **more,
    )


def resident_case(
    api: Api, point: Callable[[str], tuple[float, float]], openid: str, description: str = ""
) -> int:
    """A case reported by a resident through WeChat (the inbound webhook's way in: intake)."""
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    lng, lat = point(GRID)
    g_lng, g_lat = wgs84_to_gcj02(lng, lat)
    report_in = ReportIn(
        client_id=uuid.uuid4().hex,
        lat=g_lat,
        lng=g_lng,
        crs="gcj02",
        description=description or "小区门口井盖丢失，晚上很危险",
    )
    with session_scope(api.engine) as session:
        case, created = intake(
            session,
            report=report_in,
            reporter=Reporter(Channel.WECHAT, openid),
            now=api.clock.now,
            ctx=runtime.intake_context(),
        )
        assert created
        assert case.id is not None
        return case.id
