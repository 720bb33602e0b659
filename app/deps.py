"""FastAPI dependencies: the request's session (its transaction), the runtime, the actor."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, bindparam, select
from sqlmodel import Session

from app.runtime import Runtime
from core.db import reader, session_scope
from core.errors import (
    CsrfFailed,
    InvalidToken,
    Lang,
    MissingToken,
    TokenRevoked,
    WrongRole,
    pick_language,
)
from core.models import Role, User, UserGrid
from core.security import Actor, TokenClaims, csrf_token, read_token


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def request_language(request: Request) -> Lang:
    """The language of the answer's messages: Chinese unless `Accept-Language` prefers English."""
    return pick_language(request.headers.get("accept-language"))


LanguageDep = Annotated[Lang, Depends(request_language)]


def get_session(request: Request, runtime: RuntimeDep) -> Iterator[Session]:
    """The request owns the transaction: commit when the endpoint returns, else roll back."""
    engine = reader(runtime.engine) if request.method in ("GET", "HEAD") else runtime.engine
    with session_scope(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def case_turn(runtime: RuntimeDep, case_id: Annotated[str, Path()]) -> AsyncIterator[None]:
    """Actions on one case take turns before they get a thread and a connection (409 `busy`
    after the lock timeout); declared first, it is released after the request's commit.
    A case_no (local date + zero-padded id) takes the turn of its id."""
    digits = case_id[8:] if len(case_id) > 10 else case_id
    key: int | str = int(digits) if digits.isascii() and digits.isdigit() else case_id
    async with runtime.case_turns.take(key, timeout=runtime.settings.lock_timeout_seconds):
        yield


CaseTurnDep = Annotated[None, Depends(case_turn, scope="function")]

_bearer = HTTPBearer(auto_error=False)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


_USER = User.__table__  # type: ignore[attr-defined]
_USER_GRID = UserGrid.__table__  # type: ignore[attr-defined]
# An account and its grids in one round trip (one row per grid; one row with a NULL grid when
# it has none). Built once: every request of an account not cached (or expired) runs it.
_ACCOUNT = (
    select(
        _USER.c.id,
        _USER.c.username,
        _USER.c.role,
        _USER.c.display_name,
        _USER.c.department_code,
        _USER.c.area_code,
        _USER.c.active,
        _USER.c.token_version,
        _USER_GRID.c.grid_code,
    )
    .select_from(_USER.outerjoin(_USER_GRID, _USER_GRID.c.user_id == _USER.c.id))
    .where(_USER.c.id == bindparam("user_id"))
)


def load_actor(connection: Connection, user_id: int, token_version: int | None) -> Actor:
    """The account behind a token, refused when it is gone, disabled or its tokens revoked."""
    rows = connection.execute(_ACCOUNT, {"user_id": user_id}).all()
    if not rows or not rows[0].active:
        raise InvalidToken()
    user = rows[0]
    if token_version is not None and user.token_version != token_version:
        raise TokenRevoked()
    grids: frozenset[str] = frozenset()
    if user.role == Role.GRID_WORKER:
        grids = frozenset(row.grid_code for row in rows if row.grid_code is not None)
    return Actor(
        id=user.id,
        username=user.username,
        role=Role(user.role),
        display_name=user.display_name,
        department_code=user.department_code,
        grid_codes=grids,
        area_code=user.area_code,
    )


# The console's session: the same signed token in an HttpOnly, SameSite=Strict cookie.
SESSION_COOKIE = "gridgov_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_token_claims(request: Request, credentials: BearerDep) -> TokenClaims:
    """The token's claims, once signature, expiry and revocation are checked: no database but a
    revision read at most every `auth_refresh_seconds` (see `AuthWatch`)."""
    return await _checked_claims(runtime_of(request), credentials, request)


async def _checked_claims(
    runtime: Runtime, credentials: HTTPAuthorizationCredentials | None, request: Request
) -> TokenClaims:
    """A bearer token first; without one, the console's session cookie, whose changes (any
    method but GET/HEAD/OPTIONS) must carry the session's `X-CSRF-Token`."""
    settings = runtime.settings
    now = runtime.now()
    from_cookie = False
    if credentials is not None and credentials.scheme.lower() == "bearer":
        token = credentials.credentials
    elif (cookie := request.cookies.get(SESSION_COOKIE)) is not None:
        token, from_cookie = cookie, True
    else:
        raise MissingToken()
    claims = read_token(
        token,
        secret=settings.secret_key,
        now=now,
        leeway=settings.token_leeway_seconds,
    )
    if from_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(
            sent.encode(), csrf_token(settings.secret_key, claims.jti).encode()
        ):
            raise CsrfFailed()
    if runtime.auth.due():
        await run_in_threadpool(runtime.auth.refresh, now=now)
    if runtime.auth.is_revoked(claims.jti):
        raise TokenRevoked()
    return claims


ClaimsDep = Annotated[TokenClaims, Depends(get_token_claims)]


async def get_actor(request: Request, credentials: BearerDep) -> Actor:
    """The caller, from a signed token; accounts are cached (see `ActorCache`, `AuthWatch`).

    Async so that the usual cache hit costs no thread hop; a miss reads in the threadpool.
    Flat (the token is checked here, not by `ClaimsDep`; the runtime read from the request):
    FastAPI resolves every nested dependency again in each request, the repeated ones too.
    """
    runtime = runtime_of(request)
    claims = await _checked_claims(runtime, credentials, request)
    cached = runtime.actors.peek(claims.user_id, claims.token_version)
    if cached is not None:
        return cached
    generation = runtime.actors.generation()
    actor = await run_in_threadpool(
        _load_with_own_session, runtime, claims.user_id, claims.token_version
    )
    runtime.actors.put(claims.user_id, claims.token_version, actor, generation=generation)
    return actor


def _load_with_own_session(runtime: Runtime, user_id: int, token_version: int) -> Actor:
    # Not the request's session: on SQLite that would take the write lock before any work.
    with reader(runtime.engine).connect() as connection:
        return load_actor(connection, user_id, token_version)


ActorDep = Annotated[Actor, Depends(get_actor)]


def require_role(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise WrongRole(roles=" / ".join(r.value for r in roles))
