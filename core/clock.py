"""The clock: rules never read it themselves, they take `now`; the assembly passes a `Clock`.

Tests hand the application a clock they move (tests/conftest.py `FakeClock`); nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The real time, timezone-aware UTC."""
    return datetime.now(UTC)
