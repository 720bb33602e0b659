"""HTTP glue of the WeChat official account's webhook (`/wechat`, see channels/wechat).

A refused call (signature, timestamp, AppID, XML, size) is a 4xx with nothing stored. A message
that passes is always answered with well-formed XML or `success`: a failure while handling it
rolls its transaction back and apologises to the resident, never a 500 to WeChat.
"""

from __future__ import annotations

import logging
import traceback

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from app.deps import runtime_of
from app.runtime import Runtime
from channels.wechat import service as wechat
from channels.wechat.messages import Inbound
from core.db import session_scope
from core.errors import PayloadTooLarge, WechatNotConfigured
from events.service import mask_identity

router = APIRouter(tags=["wechat"])
log = logging.getLogger("gridgov.wechat")


def _config(runtime: Runtime) -> wechat.WechatConfig:
    try:
        config = wechat.config_of(runtime.settings)
    except ValueError as exc:
        log.error("WeChat is misconfigured: %s", exc)
        config = None
    if config is None:
        raise WechatNotConfigured()
    return config


def _params(request: Request) -> wechat.CallParams:
    q = request.query_params
    return wechat.CallParams(
        signature=q.get("signature"),
        timestamp=q.get("timestamp", ""),
        nonce=q.get("nonce", ""),
        encrypt_type=q.get("encrypt_type"),
        msg_signature=q.get("msg_signature"),
    )


@router.get(
    "/wechat",
    response_class=PlainTextResponse,
    responses={403: {"description": "wrong signature or stale timestamp"}},
)
def wechat_url_check(request: Request) -> PlainTextResponse:
    """WeChat's URL check: `echostr` back, verbatim, when signed with GRIDGOV_WECHAT_TOKEN."""
    runtime = runtime_of(request)
    config = _config(runtime)
    echostr = request.query_params.get("echostr", "")
    answer = wechat.verify_url(config, _params(request), echostr, now=runtime.now())
    return PlainTextResponse(answer)


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it grows past `limit`."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/wechat",
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {}, "text/plain": {}}},
        400: {"description": "not a WeChat message"},
        403: {"description": "wrong signature, stale timestamp or another AppID"},
    },
)
async def wechat_message(request: Request) -> Response:
    """A resident's message (plain or safe mode): the reply, XML or `success`."""
    runtime = runtime_of(request)
    config = _config(runtime)
    params = _params(request)
    body = await _body(request, config.max_body_bytes)
    now = runtime.now()
    message = wechat.open_message(config, params, body, now=now)
    try:
        reply = await run_in_threadpool(_handle, runtime, config, message)
    except Exception as exc:  # never a 500 to WeChat; nothing of the message was kept
        # The exception's text may quote SQL parameters (the OpenID): type and stack only.
        log.error(
            "wechat message from %s failed: %s\n%s",
            mask_identity(message.openid),
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        reply = wechat.apology(message, now=now)
    sealed = wechat.seal(config, reply, safe_mode=params.safe_mode, nonce=params.nonce, now=now)
    return Response(content=sealed.body, media_type=sealed.media_type)


def _handle(runtime: Runtime, config: wechat.WechatConfig, message: Inbound) -> str:
    ctx = runtime.intake_context()
    now = runtime.now()
    with session_scope(runtime.engine) as session:
        handled = wechat.handle(session, message=message, config=config, ctx=ctx, now=now)
    if handled.case_id is not None:
        runtime.metrics.report_filed("wechat")
    return handled.reply
