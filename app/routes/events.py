"""GET /v1/events/stream: every change of a case the caller may see, as server-sent events.

`EventSource('/v1/events/stream')` in the console (the session cookie signs it in); any other
client with a bearer token. Each message is `event: case`, `id: <feed position>`, `data:` the
change as JSON (`seq`, `case_id`, `case_no`, `action`, `status`, `at`). A reconnecting browser
sends `Last-Event-ID` and first gets what it missed (up to 2,000 changes; more: reload). A
comment line every 15 s keeps proxies from closing an idle stream; a stream ends after
`stream_max_seconds`, when its token expires or is revoked, and at shutdown, and the browser
reconnects by itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app.deps import ActorDep, ClaimsDep, RuntimeDep
from app.runtime import Runtime
from core.security import Actor, TokenClaims
from dispatch.feed import Change

router = APIRouter(prefix="/v1/events", tags=["events"])

KEEPALIVE_SECONDS = 15.0


def _message(change: Change) -> str:
    data = json.dumps(change.message(), ensure_ascii=False, separators=(",", ":"))
    return f"id: {change.seq}\nevent: case\ndata: {data}\n\n"


def _position(last_event_id: str | None) -> int | None:
    if last_event_id is None:
        return None
    text = last_event_id.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


async def _still_valid(runtime: Runtime, claims: TokenClaims) -> bool:
    now = runtime.now()
    if claims.expires_at <= now:
        return False
    if runtime.auth.due():
        await run_in_threadpool(runtime.auth.refresh, now=now)
    return not runtime.auth.is_revoked(claims.jti)


async def _events(
    runtime: Runtime, actor: Actor, claims: TokenClaims, after: int | None
) -> AsyncIterator[str]:
    hub = runtime.changes
    assert hub is not None
    listener, start = await hub.subscribe(actor)
    try:
        yield "retry: 2000\n: gridgov change feed\n\n"
        seen = start
        if after is not None and after < start:
            for missed in await hub.catch_up(actor, after, start):
                yield _message(missed)
        seen = max(start, after or 0)
        loop = asyncio.get_running_loop()
        ends = loop.time() + runtime.settings.stream_max_seconds
        while (left := ends - loop.time()) > 0:
            try:
                change = await asyncio.wait_for(
                    listener.queue.get(), timeout=min(KEEPALIVE_SECONDS, left)
                )
            except TimeoutError:
                if not await _still_valid(runtime, claims):
                    return
                yield ": keepalive\n\n"
                continue
            if change is None:  # dropped as too slow, or the process stops
                return
            if change.seq > seen:
                seen = change.seq
                yield _message(change)
    finally:
        hub.unsubscribe(listener)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def stream(
    runtime: RuntimeDep,
    actor: ActorDep,
    claims: ClaimsDep,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> StreamingResponse:
    """Live changes of the cases the caller may see (role and place, as `GET /v1/cases`)."""
    return StreamingResponse(
        _events(runtime, actor, claims, _position(last_event_id)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
