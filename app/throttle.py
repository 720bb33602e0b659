"""Login throttling shared by every process: failures in a sliding window lock a username (or
an address) out of `POST /v1/auth/token`, even for the right password, until the window passes.

Every attempt is a `login_attempt` row (and a log line), so all processes count the same; an
attempt counts as a failure from the moment it starts, so parallel guesses cannot overshoot.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select, text, update
from sqlmodel import Session, col

from core.models import LoginAttempt, LoginOutcome

log = logging.getLogger("gridgov.auth")

# Attempts are kept this long as a record, then purged on a later successful login.
ATTEMPT_RETENTION = timedelta(days=30)
# Advisory lock classes (PostgreSQL) serialising the attempts of one username / one address.
_LOCK_USERNAME, _LOCK_ADDRESS = 7401, 7402


@dataclass(frozen=True)
class LoginLimits:
    window: timedelta
    per_username: int
    per_address: int


def _nth_latest_failure(
    session: Session, *conditions: ColumnElement[bool], n: int
) -> datetime | None:
    """Time of the n-th most recent failure matching `conditions` (None: fewer than n)."""
    return session.execute(
        select(col(LoginAttempt.at))
        .where(col(LoginAttempt.outcome) == LoginOutcome.FAILURE, *conditions)
        .order_by(col(LoginAttempt.at).desc())
        .offset(n - 1)
        .limit(1)
    ).scalar()


def lockout_seconds(
    session: Session, *, username: str, address: str, now: datetime, limits: LoginLimits
) -> int | None:
    """Seconds until this username and address may try again, or None when neither is locked.

    A username counts its failures since its last success; an address counts all of them (one
    account's success must not reset a guesser's count).
    """
    since = now - limits.window
    last_success = session.execute(
        select(func.max(col(LoginAttempt.id))).where(
            col(LoginAttempt.username) == username,
            col(LoginAttempt.outcome) == LoginOutcome.SUCCESS,
            col(LoginAttempt.at) > since,
        )
    ).scalar()
    lifted: list[datetime] = []
    nth = _nth_latest_failure(
        session,
        col(LoginAttempt.username) == username,
        col(LoginAttempt.at) > since,
        col(LoginAttempt.id) > (last_success or 0),
        n=limits.per_username,
    )
    if nth is not None:
        lifted.append(nth + limits.window)
    nth = _nth_latest_failure(
        session,
        col(LoginAttempt.address) == address,
        col(LoginAttempt.at) > since,
        n=limits.per_address,
    )
    if nth is not None:
        lifted.append(nth + limits.window)
    if not lifted:
        return None
    return max(1, math.ceil((max(lifted) - now).total_seconds()))


def _serialise(session: Session, *, username: str, address: str) -> None:
    """One attempt per username and per address at a time, so parallel guesses are counted
    before they are checked (SQLite's writers are serialised already)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        for key, value in ((_LOCK_USERNAME, username), (_LOCK_ADDRESS, address)):
            session.execute(
                text("SELECT pg_advisory_xact_lock(:key, hashtext(:value))"),
                {"key": key, "value": value},
            )


def begin_attempt(
    session: Session, *, username: str, address: str, now: datetime, limits: LoginLimits
) -> tuple[int | None, int | None]:
    """(attempt id, None): the attempt is recorded as a failure until `settle_attempt` says
    otherwise, so it counts while the password is being checked; or (None, seconds to wait)
    when locked out, the refusal recorded. Call in a write transaction of its own."""
    _serialise(session, username=username, address=address)
    wait = lockout_seconds(session, username=username, address=address, now=now, limits=limits)
    if wait is not None:
        session.add(
            LoginAttempt(username=username, address=address, outcome=LoginOutcome.LOCKED, at=now)
        )
        session.flush()
        log.warning(
            "login refused, too many failures: username=%r address=%s retry_after=%ss",
            username,
            address,
            wait,
        )
        return None, wait
    attempt = LoginAttempt(username=username, address=address, outcome=LoginOutcome.FAILURE, at=now)
    session.add(attempt)
    session.flush()
    return attempt.id, None


def record_success(session: Session, *, attempt_id: int, now: datetime) -> None:
    """The password was right: the attempt no longer counts; old attempts are purged."""
    session.execute(
        update(LoginAttempt)
        .where(col(LoginAttempt.id) == attempt_id)
        .values(outcome=LoginOutcome.SUCCESS)
    )
    session.execute(delete(LoginAttempt).where(col(LoginAttempt.at) < now - ATTEMPT_RETENTION))
    session.flush()


def log_outcome(*, username: str, address: str, succeeded: bool) -> None:
    if succeeded:
        log.info("login success: username=%r address=%s", username, address)
    else:
        log.warning("login failure: username=%r address=%s", username, address)
