"""Server-sent events for live screens: one poller per process fans the change feed out.

Each process reads `dispatch.feed` every `stream_poll_seconds` while anyone listens (one query
per process, however many consoles are open) and hands each change to the listeners who may
see it. Changes made through any process of the service reach every process's listeners, as
they all read the one database. A listener that falls behind (its queue full) is dropped; its
browser reconnects with `Last-Event-ID` and catches up from the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine

from core.db import reader
from core.security import Actor
from dispatch import feed

log = logging.getLogger("gridgov.stream")

QUEUE_SIZE = 1000
CATCH_UP_LIMIT = 2000


@dataclass(eq=False)
class Listener:
    actor: Actor
    queue: asyncio.Queue[feed.Change | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )


class ChangeHub:
    def __init__(self, engine: Engine, *, poll_seconds: float) -> None:
        self._engine = reader(engine)
        self._poll = poll_seconds
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._last: int | None = None

    def _read_latest(self) -> int:
        with self._engine.connect() as connection:
            return feed.latest_seq(connection)

    def _read_after(self, after: int, limit: int) -> list[feed.Change]:
        with self._engine.connect() as connection:
            return feed.changes_after(connection, after, limit=limit)

    async def subscribe(self, actor: Actor) -> tuple[Listener, int]:
        """A new listener and the feed position it starts after."""
        listener = Listener(actor)
        if self._last is None or self._task is None or self._task.done():
            self._last = await run_in_threadpool(self._read_latest)
        self._listeners.add(listener)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return listener, self._last

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    async def catch_up(self, actor: Actor, after: int, until: int) -> list[feed.Change]:
        """Changes the actor may see in (after, until]: a reconnecting browser's gap."""
        if until <= after:
            return []
        changes = await run_in_threadpool(self._read_after, after, CATCH_UP_LIMIT)
        return [c for c in changes if c.seq <= until and feed.may_see(actor, c)]

    async def _run(self) -> None:
        while self._listeners:
            try:
                await self._poll_once()
            except Exception:  # the database away for a moment: listeners wait, then resume
                log.warning("change feed read failed", exc_info=True)
            await asyncio.sleep(self._poll)
        self._task = None

    async def _poll_once(self) -> None:
        assert self._last is not None
        changes = await run_in_threadpool(self._read_after, self._last, 500)
        for change in changes:
            self._last = change.seq
            for listener in list(self._listeners):
                if feed.may_see(listener.actor, change):
                    self._offer(listener, change)

    def _offer(self, listener: Listener, change: feed.Change | None) -> None:
        try:
            listener.queue.put_nowait(change)
        except asyncio.QueueFull:  # too slow: dropped, it reconnects and catches up
            self._listeners.discard(listener)
            with contextlib.suppress(asyncio.QueueFull):
                listener.queue.get_nowait()
                listener.queue.put_nowait(None)

    def end_streams(self) -> None:
        """Tell every listener's stream to end now (the process is stopping)."""
        for listener in list(self._listeners):
            self._offer(listener, None)

    def end_streams_on_exit_signals(self) -> None:
        """Streams never finish by themselves, and uvicorn waits for open responses before it
        stops: on SIGINT/SIGTERM, end them first, then let its own handler run. Only where
        signals can be set (the main thread: `gridgov serve`); elsewhere nothing changes."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def on_exit(
                number: int, frame: FrameType | None, previous: Callable[..., Any] = previous
            ) -> None:
                loop.call_soon_threadsafe(self.end_streams)
                previous(number, frame)

            try:
                signal.signal(sig, on_exit)
            except ValueError:  # not the main thread (tests run the server in a thread)
                return

    async def close(self) -> None:
        self.end_streams()
        self._listeners.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
