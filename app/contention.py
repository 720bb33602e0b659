"""Actions on one case take turns in the event loop, not in request threads.

Without this, a hot case (dozens of parallel clicks on one case) fills every request thread and
pooled connection with waits on its row lock, and every other user waits behind them. Here, in
each process, one action per case at a time gets a thread and a connection; the others wait
on an asyncio lock, holding nothing, for at most the lock timeout, then answer 409 `busy`.
Across processes the database row lock (bounded by `lock_timeout`) still decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from core.errors import Busy


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Turns:
    """One holder per key; waiters queue in arrival order. Entries live while someone uses them.

    Used from one event loop (the process's), so the dictionary needs no lock.
    """

    def __init__(self) -> None:
        self._turns: dict[Hashable, _Turn] = {}

    @asynccontextmanager
    async def take(self, key: Hashable, *, timeout: float) -> AsyncIterator[None]:
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = _Turn()
        turn.users += 1
        try:
            try:
                async with asyncio.timeout(timeout):
                    await turn.lock.acquire()
            except TimeoutError:
                raise Busy() from None
            try:
                yield
            finally:
                turn.lock.release()
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[key]

    def __len__(self) -> int:
        return len(self._turns)
