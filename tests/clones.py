"""Copies of a seeded database, one per test.

Migrating and demo-seeding takes seconds, so each backend is seeded once per session as a
template that is only ever copied: a file copy on SQLite (about a millisecond), `CREATE DATABASE
… TEMPLATE` on PostgreSQL (0.1-0.3 s, and as much again to drop). On PostgreSQL background
threads make the next copies while tests run and drop the used ones, so a test rarely waits.
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

# Copies kept ready ahead of the tests. Two hide the copying behind the tests on 2 cores; more
# only hold PostgreSQL's disk and memory.
AHEAD = 2
# Longest wait for a copy: the copier is stuck or PostgreSQL refuses (then the test fails).
TAKE_TIMEOUT_SECONDS = 60.0
# A used copy is dropped this long after the test gave it back: its server processes are gone
# by then (a DROP meeting one still exiting waits for it in 100 ms steps), and making copies
# for the tests comes first.
DROP_AFTER_SECONDS = 1.0
# Threads dropping used copies. Each DROP DATABASE waits for a checkpoint (0.1-0.5 s on a quiet
# machine, seconds on a busy one); drops in flight together share one. Two xdist workers give
# back copies twice as fast: with three each a backlog built up on a loaded machine and the last
# test of each worker waited 40-50 s in `close` for it; with six, 4 s at most (each one idle
# connection while there is nothing to drop).
DROPPERS = 6


@dataclass
class CloneStats:
    """What the copies cost, for the run's summary line."""

    made: int = 0
    make_seconds: float = 0.0
    dropped: int = 0
    drop_seconds: float = 0.0
    waited_seconds: float = 0.0  # tests waiting for a copy (all of it, on SQLite)

    def add(self, other: CloneStats) -> None:
        """Counts of another process (an xdist worker) added to these."""
        self.made += other.made
        self.make_seconds += other.make_seconds
        self.dropped += other.dropped
        self.drop_seconds += other.drop_seconds
        self.waited_seconds += other.waited_seconds

    def line(self, backend: str) -> str:
        make = self.make_seconds / self.made if self.made else 0.0
        drop = self.drop_seconds / self.dropped if self.dropped else 0.0
        dropping = f" and {drop * 1000:.1f} ms to drop" if self.dropped else ""
        return (
            f"{backend}: {self.made} test databases, {make * 1000:.1f} ms to copy{dropping} "
            f"each; tests waited {self.waited_seconds:.1f} s in all"
        )


def copy_sqlite(template: Path, target: Path) -> None:
    """The template file (its WAL too, if any) copied to `target`."""
    for suffix in ("", "-wal"):
        source = Path(f"{template}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{target}{suffix}")


def remove_sqlite(target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)


class PostgresClones:
    """Databases copied from `template` on the server of `admin_url`: one background thread
    makes them ahead, a few others drop the used ones (each thread its own connection; the
    template must have none)."""

    def __init__(
        self, admin_url: str, template: str, *, ahead: int = AHEAD, droppers: int = DROPPERS
    ) -> None:
        self._template = template
        self._prefix = f"{template}_c{uuid.uuid4().hex[:4]}_"
        self._ahead = ahead
        self._ready: queue.Queue[str] = queue.Queue()
        self._used: deque[tuple[float, str]] = deque()  # (given back at, name), oldest first
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._count = 0
        self._error: BaseException | None = None
        self.stats = CloneStats()
        self._engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self._threads = [threading.Thread(target=self._making, name="db-copies", daemon=True)]
        self._threads += [
            threading.Thread(target=self._dropping, name=f"db-drops-{i}", daemon=True)
            for i in range(droppers)
        ]
        for thread in self._threads:
            thread.start()

    # -- the tests' side ------------------------------------------------------------------------

    def take(self) -> str:
        """The name of a fresh copy, the test's alone until `give_back`."""
        self._wake.set()
        started = time.perf_counter()
        while True:
            if self._error is not None:
                raise RuntimeError(f"copying the test database failed: {self._error}")
            try:
                name = self._ready.get(timeout=0.5)
            except queue.Empty:
                if time.perf_counter() - started > TAKE_TIMEOUT_SECONDS:
                    raise RuntimeError("no copy of the test database came") from None
                continue
            self._wake.set()  # make the next one
            with self._lock:
                self.stats.waited_seconds += time.perf_counter() - started
            return name

    def give_back(self, name: str) -> None:
        """The copy is done with: dropped in the background (its connections ended)."""
        with self._lock:
            self._used.append((time.monotonic(), name))

    def close(self) -> None:
        """Drop every used copy, stop the threads, drop the copies still ready."""
        self._closing.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=120)
        with self._engine.connect() as conn:
            while not self._ready.empty():
                self._drop(conn, self._ready.get_nowait())
            while self._used:  # only if a dropper failed
                self._drop(conn, self._used.popleft()[1])
        self._engine.dispose()

    # -- the background threads -----------------------------------------------------------------

    def _making(self) -> None:
        try:
            with self._engine.connect() as conn:
                while not self._closing.is_set():
                    self._wake.clear()
                    if self._ready.qsize() < self._ahead:
                        self._ready.put(self._make(conn))
                    else:
                        self._wake.wait(timeout=0.2)
        except BaseException as exc:  # reported to the next `take`
            self._error = exc

    def _dropping(self) -> None:
        """Drops from several connections at once share the checkpoint each DROP asks for."""
        try:
            with self._engine.connect() as conn:
                while True:
                    closing = self._closing.is_set()
                    name = self._next_to_drop(closing)
                    if name is not None:
                        self._drop(conn, name)
                    elif closing:
                        return
                    else:
                        self._closing.wait(timeout=0.1)
        except BaseException as exc:
            self._error = exc

    def _next_to_drop(self, closing: bool) -> str | None:
        with self._lock:
            if self._used and (closing or self._used[0][0] < time.monotonic() - DROP_AFTER_SECONDS):
                return self._used.popleft()[1]
        return None

    def _make(self, conn: Connection) -> str:
        self._count += 1
        name = f"{self._prefix}{self._count}"
        started = time.perf_counter()
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"'))
        with self._lock:
            self.stats.made += 1
            self.stats.make_seconds += time.perf_counter() - started
        return name

    def _drop(self, conn: Connection, name: str) -> None:
        started = time.perf_counter()
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        with self._lock:
            self.stats.dropped += 1
            self.stats.drop_seconds += time.perf_counter() - started
