"""Passwords (argon2), signed bearer tokens and the acting user's role and place."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import InvalidToken, TokenExpired
from core.models import Role

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Actor:
    """Who is acting: role plus place (grids) or unit (department)."""

    id: int | None
    username: str
    role: Role
    display_name: str = ""
    department_code: str | None = None
    grid_codes: frozenset[str] = field(default_factory=frozenset)
    # A dispatcher scoped to a 镇街 (9 digits) or 村居 (12 digits) command centre; None: the
    # district's (admin, unscoped dispatchers).
    area_code: str | None = None

    @property
    def is_command_centre(self) -> bool:
        return self.role in (Role.DISPATCHER, Role.ADMIN)

    @property
    def centre_level(self) -> int:
        """The escalation level this command centre stands at: 1 a 村居, 2 a 镇街, 3 the
        district (0: not a command centre)."""
        if not self.is_command_centre:
            return 0
        return {12: 1, 9: 2}.get(len(self.area_code or ""), 3)

    def covers(self, grid_code: str) -> bool:
        """Whether a command centre's area holds this grid (the district's holds every one)."""
        return self.is_command_centre and grid_code.startswith(self.area_code or "")


SYSTEM_ACTOR = Actor(id=None, username="system", role=Role.ADMIN, display_name="系统")


@dataclass(frozen=True)
class Outsider:
    """Someone acting without an account: a resident writing through WeChat, a civic app through
    Open311. Named by channel and a masked identity (`wechat:o6_b…`): the full identity stays
    with the report, out of the history everyone in the loop reads. It has no role or place,
    so no permission check can take it for an account."""

    channel: str
    masked_identity: str
    id: None = None

    @property
    def role(self) -> str:
        return self.channel

    @property
    def username(self) -> str:
        return f"{self.channel}:{self.masked_identity}"

    @property
    def display_name(self) -> str:
        return self.username


# Who a history row and a case event name: an account, or an outsider.
Party = Actor | Outsider


TOKEN_ALGORITHM = "HS256"
# `ver` is the account's token version: bumping it revokes every token issued before.
_REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti", "ver"]
_MAX_USER_ID = 2**31 - 1


def issue_token(
    *,
    secret: str,
    user_id: int,
    token_version: int,
    now: datetime,
    ttl: int,
    jti: str | None = None,
) -> str:
    """A JWT (HS256) any process holding the key can check; `jti` names it for logout."""
    issued = int(now.timestamp())
    claims = {
        "sub": str(user_id),
        "iat": issued,
        "exp": issued + ttl,
        "jti": jti or secrets.token_urlsafe(16),
        "ver": token_version,
    }
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    token_version: int
    jti: str
    expires_at: datetime


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"claim {name} is not a number")
    return int(value)


@lru_cache(maxsize=8192)
def _verified(token: str, secret: str) -> tuple[TokenClaims, int]:
    """(claims, iat) of a token whose signature, algorithm and claims PyJWT accepted.

    Cached by the token itself: a client presents the same token on every request, and the
    check costs ~0.1 ms; expiry and revocation are still decided on every call. Defects raise
    (and are not cached).
    """
    claims = jwt.decode(
        token,
        secret,
        algorithms=[TOKEN_ALGORITHM],
        options={"require": _REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
    )
    expires, issued = _int_claim(claims, "exp"), _int_claim(claims, "iat")
    version = _int_claim(claims, "ver")
    sub, jti = claims["sub"], claims["jti"]
    if not (sub.isascii() and sub.isdigit() and 0 < int(sub) <= _MAX_USER_ID):
        raise ValueError("sub is not a user id")
    if not 0 < len(jti) <= 64:
        raise ValueError("jti length")
    expires_at = datetime.fromtimestamp(expires, UTC)
    return TokenClaims(
        user_id=int(sub), token_version=version, jti=jti, expires_at=expires_at
    ), issued


def csrf_token(secret: str, jti: str) -> str:
    """The console's anti-CSRF token for one session token: derived, so nothing is stored, and
    a page of another origin, which cannot read the session's answers, cannot know it."""
    return hmac.new(secret.encode(), f"csrf:{jti}".encode(), hashlib.sha256).hexdigest()


def read_token(token: str, *, secret: str, now: datetime, leeway: float = 0.0) -> TokenClaims:
    """Signature, algorithm and required claims by PyJWT; times against the process clock
    (PyJWT would read the wall clock, tests move theirs). Any defect is a 401."""
    try:
        claims, issued = _verified(token, secret)
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError, OverflowError) as exc:
        raise InvalidToken() from exc
    at = now.timestamp()
    if claims.expires_at.timestamp() + leeway <= at:
        raise TokenExpired()
    if issued - leeway > at:
        raise InvalidToken()
    return claims


def mask_name(name: str | None) -> str | None:
    """张* / 欧阳** : keep the first character only."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)
