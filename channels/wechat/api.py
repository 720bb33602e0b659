"""The WeChat API client (api.weixin.qq.com): the access token held in one place for every
process, media downloads and template messages.

Getting a new access token invalidates the previous one, so no process keeps its own: the
token lives in one row (`wechat_access_token`). A process that finds it missing or about to
expire claims the row with a conditional UPDATE (a lease, so a killed refresher's claim runs
out), asks WeChat with no transaction open, and stores the answer; the others wait for it and
reuse it. A call refused for an invalid or expired token (40001, 40014, 42001) refreshes the
token once, unless another process already did, and is tried again.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from channels.wechat.outbound_models import WechatAccessToken
from core.db import session_scope
from core.settings import Settings

# Invalid credential, invalid access_token, access_token expired.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# The longest a refresh may hold the row before another process takes over.
LEASE_SECONDS = 30.0
# How often a process waiting for another's refresh looks at the row (real time).
POLL_SECONDS = 0.05

_TOKEN_TABLE = WechatAccessToken.__table__  # type: ignore[attr-defined]


class WechatApiError(Exception):
    """WeChat refused a call (`errcode`), or it could not be reached (`errcode` None)."""

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}" if errcode is not None else errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass
class WechatApi:
    """One official account's API, for one database (where its token is kept)."""

    engine: Engine
    appid: str
    secret: str
    base: str
    client: httpx.Client
    clock: Callable[[], datetime]
    refresh_ahead: timedelta = timedelta(minutes=5)
    lease: timedelta = timedelta(seconds=LEASE_SECONDS)

    # --- the access token -------------------------------------------------------------------

    def token(self, *, stale: str | None = None) -> str:
        """A valid access token: the stored one, or a new one if it is missing, expires within
        `refresh_ahead`, or is `stale` (WeChat just refused it). One process refreshes; the
        others wait for its answer (up to the lease, in real time) and then take over."""
        deadline = time.monotonic() + self.lease.total_seconds() + 5.0
        while True:
            now = self.clock()
            current = self._stored()
            if current is not None and current != stale:
                return current
            lease = self._claim(now, stale=stale)
            if lease is not None:
                return self._refresh(lease)
            if time.monotonic() > deadline:
                raise WechatApiError(None, "access token refresh by another process timed out")
            time.sleep(POLL_SECONDS)

    def _stored(self) -> str | None:
        """The stored token if it is good for longer than `refresh_ahead`."""
        now = self.clock()
        with session_scope(self.engine) as session:
            row = session.execute(
                select(_TOKEN_TABLE.c.token, _TOKEN_TABLE.c.expires_at).where(
                    _TOKEN_TABLE.c.appid == self.appid
                )
            ).one_or_none()
        if row is None or row.token is None or row.expires_at is None:
            return None
        return str(row.token) if row.expires_at - self.refresh_ahead > now else None

    def _claim(self, now: datetime, *, stale: str | None) -> str | None:
        """Take the refresh lease when the row needs a refresh and nobody holds it."""
        lease = secrets.token_hex(16)
        t = _TOKEN_TABLE
        with session_scope(self.engine) as session:
            dialect = session.connection().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            session.execute(insert(t).values(appid=self.appid).on_conflict_do_nothing())
            needs_refresh = or_(
                t.c.token.is_(None),
                t.c.expires_at.is_(None),
                t.c.expires_at <= now + self.refresh_ahead,
                *([t.c.token == stale] if stale is not None else []),
            )
            claimed = session.execute(
                update(t)
                .where(
                    t.c.appid == self.appid,
                    or_(t.c.leased_until.is_(None), t.c.leased_until <= now),
                    needs_refresh,
                )
                .values(leased_until=now + self.lease, lease_token=lease)
                .returning(t.c.appid)
            ).first()
        return lease if claimed is not None else None

    def _refresh(self, lease: str) -> str:
        """Ask WeChat for a token under our lease and store it (or give the lease back)."""
        t = _TOKEN_TABLE
        try:
            answer = self._get_json(
                "/cgi-bin/token",
                {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )
            token = answer.get("access_token")
            expires_in = answer.get("expires_in")
            if not isinstance(token, str) or not token or not isinstance(expires_in, int):
                raise WechatApiError(None, "access token answer without access_token/expires_in")
        except BaseException:
            with session_scope(self.engine) as session:
                session.execute(
                    update(t)
                    .where(t.c.appid == self.appid, t.c.lease_token == lease)
                    .values(leased_until=None, lease_token=None)
                )
            raise
        now = self.clock()
        with session_scope(self.engine) as session:
            session.execute(
                update(t)
                .where(t.c.appid == self.appid, t.c.lease_token == lease)
                .values(
                    token=token,
                    expires_at=now + timedelta(seconds=expires_in),
                    refreshed_at=now,
                    leased_until=None,
                    lease_token=None,
                )
            )
        return token

    # --- calls ------------------------------------------------------------------------------

    def _get_json(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = self.client.get(self.base.rstrip("/") + path, params=params)
        except httpx.HTTPError as exc:
            raise WechatApiError(None, f"{type(exc).__name__}: {exc}") from exc
        return _checked(response)

    def _with_token(self, call: Callable[[str], httpx.Response]) -> httpx.Response:
        """Run `call` with the token; refused for the token: refresh once and run it again."""
        token = self.token()
        for attempt in range(2):
            try:
                response = call(token)
            except httpx.HTTPError as exc:
                raise WechatApiError(None, f"{type(exc).__name__}: {exc}") from exc
            error = _error_of(response)
            if error is not None and error.errcode in TOKEN_ERRORS and attempt == 0:
                token = self.token(stale=token)
                continue
            if error is not None:
                raise error
            return response
        raise AssertionError("unreachable")

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` (UTF-8 JSON, Chinese unescaped) with the token; WeChat's answer."""
        url = self.base.rstrip("/") + path
        content = _json_bytes(body)
        response = self._with_token(
            lambda token: self.client.post(
                url,
                params={"access_token": token},
                content=content,
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
        )
        return _checked(response)

    def download_media(self, media_id: str) -> bytes:
        """A temporary media's bytes (`/cgi-bin/media/get`); an error comes back as JSON."""
        url = self.base.rstrip("/") + "/cgi-bin/media/get"
        response = self._with_token(
            lambda token: self.client.get(url, params={"access_token": token, "media_id": media_id})
        )
        return response.content

    def send_template(
        self, *, openid: str, template_id: str, data: dict[str, str], url: str | None = None
    ) -> str | None:
        """A template message to one resident; WeChat's msgid."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
        }
        if url:
            body["url"] = url
        answer = self.post_json("/cgi-bin/message/template/send", body)
        msgid = answer.get("msgid")
        return None if msgid is None else str(msgid)


def _json_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _error_of(response: httpx.Response) -> WechatApiError | None:
    """WeChat's error in an answer: an HTTP error, or a JSON body with a non-zero errcode
    (media downloads answer JSON only on error)."""
    if response.status_code >= 400:
        return WechatApiError(None, f"HTTP {response.status_code}")
    kind = response.headers.get("content-type", "")
    if "json" not in kind and "text/plain" not in kind:
        return None
    try:
        payload = response.json()
    except ValueError:
        return None
    if isinstance(payload, dict) and payload.get("errcode") not in (None, 0):
        return WechatApiError(int(payload["errcode"]), str(payload.get("errmsg", "")))
    return None


def _checked(response: httpx.Response) -> dict[str, Any]:
    error = _error_of(response)
    if error is not None:
        raise error
    try:
        payload = response.json()
    except ValueError as exc:
        raise WechatApiError(None, "answer is not JSON") from exc
    if not isinstance(payload, dict):
        raise WechatApiError(None, "answer is not a JSON object")
    return payload


def configured(settings: Settings) -> bool:
    """Outbound WeChat needs the account's appid and secret."""
    return bool(settings.wechat_appid and settings.wechat_app_secret)


def make_client(settings: Settings) -> httpx.Client:
    return httpx.Client(
        timeout=settings.wechat_api_timeout_seconds, follow_redirects=False, trust_env=False
    )


def api_from(
    settings: Settings,
    engine: Engine,
    *,
    clock: Callable[[], datetime],
    client: httpx.Client | None = None,
) -> WechatApi | None:
    """The account's API client, or None when WeChat is not configured."""
    if not configured(settings):
        return None
    assert settings.wechat_appid is not None
    assert settings.wechat_app_secret is not None
    return WechatApi(
        engine=engine,
        appid=settings.wechat_appid,
        secret=settings.wechat_app_secret,
        base=settings.wechat_api_base,
        client=client or make_client(settings),
        clock=clock,
        refresh_ahead=timedelta(seconds=settings.wechat_token_refresh_ahead_seconds),
    )
