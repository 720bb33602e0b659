"""POST /v1/auth/token (OAuth2 password form → bearer token, throttled), /v1/auth/refresh,
/v1/auth/logout, and the console's cookie session /v1/auth/session (POST, GET, DELETE)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import Session, col

from app import throttle
from app.deps import SESSION_COOKIE, ActorDep, ClaimsDep, RuntimeDep, SessionDep, load_actor
from app.revocation import revoke_token
from app.runtime import Runtime
from core.db import reader, session_scope
from core.errors import InvalidCredentials, TokenRevoked, TooManyAttempts
from core.models import RevokedToken, User
from core.security import (
    Actor,
    TokenClaims,
    csrf_token,
    hash_password,
    issue_token,
    read_token,
    verify_password,
)
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


def _sign_in(request: Request, runtime: Runtime, username: str, password: str) -> tuple[User, str]:
    """The account and a new token for a right password (throttled per username and address)."""
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
    token = issue_token(
        secret=settings.secret_key,
        user_id=user.id,
        token_version=user.token_version,
        now=now,
        ttl=settings.token_ttl_seconds,
    )
    return user, token


@router.post("/token", response_model=TokenOut)
def token(
    request: Request,
    runtime: RuntimeDep,
    username: Annotated[Identifier, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> TokenOut:
    user, access_token = _sign_in(request, runtime, username, password)
    return TokenOut(
        access_token=access_token,
        expires_in=runtime.settings.token_ttl_seconds,
        role=user.role,
    )


class SessionOut(BaseModel):
    """The console's signed-in account; `csrf_token` goes in `X-CSRF-Token` on every change."""

    username: str
    role: str
    display_name: str | None
    department_code: str | None
    area_code: str | None
    csrf_token: str
    expires_at: datetime
    server_time: datetime = Field(
        description="the service's clock: a page's default periods follow it, not the PC's"
    )


def _session_out(runtime: Runtime, actor: Actor, claims: TokenClaims) -> SessionOut:
    return SessionOut(
        username=actor.username,
        role=actor.role,
        display_name=actor.display_name,
        department_code=actor.department_code,
        area_code=actor.area_code,
        csrf_token=csrf_token(runtime.settings.secret_key, claims.jti),
        expires_at=claims.expires_at,
        server_time=runtime.now(),
    )


@router.post("/session", response_model=SessionOut)
def open_session(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    username: Annotated[Identifier, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> SessionOut:
    """Sign in to the console: the token goes in an HttpOnly, SameSite=Strict cookie (scripts
    never see it); the answer carries the CSRF token the page sends with every change."""
    _, access_token = _sign_in(request, runtime, username, password)
    now = runtime.now()
    claims = read_token(access_token, secret=runtime.settings.secret_key, now=now)
    with reader(runtime.engine).connect() as connection:
        actor = load_actor(connection, claims.user_id, claims.token_version)
    response.set_cookie(
        SESSION_COOKIE,
        access_token,
        max_age=runtime.settings.token_ttl_seconds,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return _session_out(runtime, actor, claims)


@router.get("/session", response_model=SessionOut)
def current_session(runtime: RuntimeDep, actor: ActorDep, claims: ClaimsDep) -> SessionOut:
    """Who is signed in (a reloaded console page asks this), with the session's CSRF token."""
    return _session_out(runtime, actor, claims)


@router.delete("/session", status_code=204, response_class=Response)
def close_session(
    runtime: RuntimeDep, actor: ActorDep, claims: ClaimsDep, session: SessionDep
) -> Response:
    """Sign out of the console: the token is revoked everywhere and the cookie cleared."""
    _revoke(runtime, session, claims)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


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
    _revoke(runtime, session, claims)
    return Response(status_code=204)


def _revoke(runtime: Runtime, session: Session, claims: TokenClaims) -> None:
    revoke_token(
        session,
        jti=claims.jti,
        user_id=claims.user_id,
        expires_at=claims.expires_at,
        now=runtime.now(),
    )
    runtime.auth.note_revoked(claims.jti)
