"""Passwords (argon2), signed bearer tokens and the acting user's role and place."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.errors import Unauthorized
from app.models import Role

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

    @property
    def is_command_centre(self) -> bool:
        return self.role in (Role.DISPATCHER, Role.ADMIN)


SYSTEM_ACTOR = Actor(id=None, username="system", role=Role.ADMIN, display_name="系统")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(*, secret: str, user_id: int, token_version: int, now: datetime, ttl: int) -> str:
    """A stateless token: payload.signature (HMAC-SHA256); any process with the key can check it."""
    payload = json.dumps(
        {"sub": user_id, "ver": token_version, "exp": int(now.timestamp()) + ttl},
        separators=(",", ":"),
    ).encode()
    body = _b64(payload)
    sig = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    token_version: int


def read_token(token: str, *, secret: str, now: datetime) -> TokenClaims:
    """Check signature and expiry; any defect is the same 401."""
    try:
        body, sig = token.split(".", 1)
        expected = _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(sig, expected):
            raise ValueError("signature")
        claims = json.loads(_unb64(body))
        if int(claims["exp"]) < int(now.timestamp()):
            raise Unauthorized("token expired; sign in again", code="token_expired")
        return TokenClaims(user_id=int(claims["sub"]), token_version=int(claims["ver"]))
    except Unauthorized:
        raise
    except (ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise Unauthorized("invalid token", code="invalid_token") from exc


def mask_name(name: str | None) -> str | None:
    """张* / 欧阳** : keep the first character only."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)
