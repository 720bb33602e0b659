"""FastAPI dependencies: the request's session (its transaction), the runtime, the actor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlmodel import Session, col

from app.runtime import Runtime
from core.db import reader, session_scope
from core.errors import InvalidToken, Lang, MissingToken, TokenRevoked, WrongRole, pick_language
from core.models import Role, User, UserGrid
from core.security import Actor, TokenClaims, read_token


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


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


def load_actor(session: Session, user_id: int, token_version: int | None) -> Actor:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise InvalidToken()
    if token_version is not None and user.token_version != token_version:
        raise TokenRevoked()
    grids: frozenset[str] = frozenset()
    if user.role == Role.GRID_WORKER:
        grids = frozenset(
            session.execute(
                select(col(UserGrid.grid_code)).where(col(UserGrid.user_id) == user.id)
            ).scalars()
        )
    return Actor(
        id=user.id,
        username=user.username,
        role=Role(user.role),
        display_name=user.display_name,
        department_code=user.department_code,
        grid_codes=grids,
        area_code=user.area_code,
    )


async def get_token_claims(runtime: RuntimeDep, credentials: BearerDep) -> TokenClaims:
    """The token's claims, once signature, expiry and revocation are checked: no database but a
    revision read at most every `auth_refresh_seconds` (see `AuthWatch`)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise MissingToken()
    settings = runtime.settings
    now = runtime.now()
    claims = read_token(
        credentials.credentials,
        secret=settings.secret_key,
        now=now,
        leeway=settings.token_leeway_seconds,
    )
    if runtime.auth.due():
        await run_in_threadpool(runtime.auth.refresh, now=now)
    if runtime.auth.is_revoked(claims.jti):
        raise TokenRevoked()
    return claims


ClaimsDep = Annotated[TokenClaims, Depends(get_token_claims)]


async def get_actor(runtime: RuntimeDep, claims: ClaimsDep) -> Actor:
    """The caller, from a signed token; accounts are cached (see `ActorCache`, `AuthWatch`).

    Async so that the usual cache hit costs no thread hop; a miss reads in the threadpool.
    """
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
    with Session(reader(runtime.engine)) as session:
        return load_actor(session, user_id, token_version)


ActorDep = Annotated[Actor, Depends(get_actor)]


def require_role(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise WrongRole(roles=" / ".join(r.value for r in roles))
