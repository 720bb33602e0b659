"""POST /v1/auth/token (OAuth2 password form → bearer token, throttled), /v1/auth/refresh and
/v1/auth/logout."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import col

from app import throttle
from app.deps import ActorDep, ClaimsDep, RuntimeDep, SessionDep
from app.revocation import revoke_token
from core.db import session_scope
from core.errors import InvalidCredentials, TokenRevoked, TooManyAttempts
from core.models import RevokedToken, User
from core.security import hash_password, issue_token, verify_password
from core.text import Identifier

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so timing stays uniform; made on first
    use (an argon2 hash costs ~0.1 s, too much for every start)."""
    return hash_password("timing-equaliser-not-a-password")


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


def _address(request: Request) -> str:
    host = request.client.host if request.client is not None else None
    return (host or "unknown")[:64]


@router.post("/token", response_model=TokenOut)
def token(
    request: Request,
    runtime: RuntimeDep,
    username: Annotated[Identifier, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> TokenOut:
    settings = runtime.settings
    limits = throttle.LoginLimits(
        window=timedelta(seconds=settings.login_window_seconds),
        per_username=settings.login_max_failures_per_username,
        per_address=settings.login_max_failures_per_address,
    )
    address = _address(request)
    now = runtime.now()
    # Short write transactions around the slow hash check, which holds no database lock.
    with session_scope(runtime.engine) as session:
        attempt_id, wait = throttle.begin_attempt(
            session, username=username, address=address, now=now, limits=limits
        )
        user = None
        if attempt_id is not None:
            user = session.execute(select(User).where(col(User.username) == username)).scalar()
    if wait is not None:
        raise TooManyAttempts(seconds=wait)
    ok = verify_password(user.password_hash if user else _dummy_hash(), password)
    ok = ok and user is not None and user.active
    if ok and attempt_id is not None:
        with session_scope(runtime.engine) as session:
            throttle.record_success(session, attempt_id=attempt_id, now=now)
    throttle.log_outcome(username=username, address=address, succeeded=ok)
    if not ok or user is None or user.id is None:
        raise InvalidCredentials()
    ttl = settings.token_ttl_seconds
    return TokenOut(
        access_token=issue_token(
            secret=settings.secret_key,
            user_id=user.id,
            token_version=user.token_version,
            now=now,
            ttl=ttl,
        ),
        expires_in=ttl,
        role=user.role,
    )


@router.post("/refresh", response_model=TokenOut)
def refresh(
    runtime: RuntimeDep, actor: ActorDep, claims: ClaimsDep, session: SessionDep
) -> TokenOut:
    """A valid, unrevoked token buys a new one (new jti, fresh expiry) and is revoked in the same
    transaction, so of two holders of one token only the first to refresh gets a new one.
    Refreshes of one account take turns on its row; a token revoked moments ago in another
    process (not yet seen here) is found in the table."""
    now = runtime.now()
    session.execute(select(col(User.id)).where(col(User.id) == claims.user_id).with_for_update())
    if session.get(RevokedToken, claims.jti) is not None:
        raise TokenRevoked()
    revoke_token(
        session, jti=claims.jti, user_id=claims.user_id, expires_at=claims.expires_at, now=now
    )
    runtime.auth.note_revoked(claims.jti)
    ttl = runtime.settings.token_ttl_seconds
    return TokenOut(
        access_token=issue_token(
            secret=runtime.settings.secret_key,
            user_id=claims.user_id,
            token_version=claims.token_version,
            now=now,
            ttl=ttl,
        ),
        expires_in=ttl,
        role=actor.role,
    )


@router.post("/logout", status_code=204, response_class=Response)
def logout(
    runtime: RuntimeDep, actor: ActorDep, claims: ClaimsDep, session: SessionDep
) -> Response:
    """Revoke the presented token in every process (within `auth_refresh_seconds`); the
    account's other tokens keep working. `actor`: only a live account's token is accepted."""
    revoke_token(
        session,
        jti=claims.jti,
        user_id=claims.user_id,
        expires_at=claims.expires_at,
        now=runtime.now(),
    )
    runtime.auth.note_revoked(claims.jti)
    return Response(status_code=204)
