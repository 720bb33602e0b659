"""Revocation that reaches every process within a second: logout, disabled accounts, new token
versions.

Tokens are checked without the database (signature, claims, the process's account cache). What
can make a valid token invalid bumps one counter, `auth_revision`, in the same transaction; each
process reads that counter at most every `auth_refresh_seconds` and, when it moved, drops its
cached accounts and reloads the revoked token ids. The usual request costs one clock read.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from core.db import reader
from core.models import AuthRevision, RevokedToken


def current_auth_revision(session: Session) -> int:
    rev = session.execute(
        select(col(AuthRevision.revision)).where(col(AuthRevision.id) == 1)
    ).scalar()
    return int(rev or 0)


def bump_auth_revision(session: Session, *, now: datetime) -> None:
    """Tell every process (at its next check) to forget accounts and reload revoked tokens."""
    result = session.execute(
        update(AuthRevision)
        .where(col(AuthRevision.id) == 1)
        .values(revision=col(AuthRevision.revision) + 1, changed_at=now)
    )
    if getattr(result, "rowcount", 1) == 0:  # the migration inserts the row; a bare schema not
        session.execute(insert(AuthRevision).values(id=1, revision=1, changed_at=now))
    session.flush()


def revoke_token(
    session: Session, *, jti: str, user_id: int, expires_at: datetime, now: datetime
) -> None:
    """Refuse one token from now on (logout); expired rows of earlier logouts are purged."""
    session.execute(delete(RevokedToken).where(col(RevokedToken.expires_at) < now))
    if session.get(RevokedToken, jti) is None:
        session.add(RevokedToken(jti=jti, user_id=user_id, expires_at=expires_at, revoked_at=now))
    bump_auth_revision(session, now=now)


class AuthWatch:
    """This process's view of the revocations, refreshed when the auth revision moves."""

    def __init__(
        self,
        engine: Engine,
        *,
        refresh_seconds: float,
        on_change: Callable[[], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._refresh = refresh_seconds
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._revoked: frozenset[str] = frozenset()
        self._checked_at = -math.inf

    def _seconds(self) -> float:
        # The process clock (tests move it); a clock set back counts as time to check again.
        return self._clock().timestamp()

    def due(self) -> bool:
        """Whether the revision should be read again (cheap: one clock read)."""
        elapsed = self._seconds() - self._checked_at
        return not 0 <= elapsed < self._refresh

    def refresh(self, *, now: datetime) -> None:
        """Read the revision; on a change drop the accounts and reload the revoked tokens.

        Blocking (database): call it off the event loop. While one thread reads, the others go
        on with the current view, except before the first read, which everyone waits for.
        """
        if not self._lock.acquire(blocking=self._revision is None):
            return
        try:
            if not self.due():
                return
            started = self._seconds()
            with Session(reader(self._engine)) as session:
                # The revision first: a revocation committed after this read moves it again.
                revision = current_auth_revision(session)
                if revision != self._revision:
                    revoked = frozenset(
                        session.execute(
                            select(col(RevokedToken.jti)).where(col(RevokedToken.expires_at) > now)
                        ).scalars()
                    )
                    self._on_change()
                    self._revoked = revoked
                    self._revision = revision
            self._checked_at = started
        finally:
            self._lock.release()

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    def note_revoked(self, jti: str) -> None:
        """This process knows at once; the others at their next check."""
        self._revoked = self._revoked | {jti}
