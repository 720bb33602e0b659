"""POST /v1/auth/token: OAuth2 password form → bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import Session, col

from app.db import reader
from app.deps import RuntimeDep
from app.errors import Unauthorized
from app.models import User
from app.security import hash_password, issue_token, verify_password

router = APIRouter(prefix="/v1/auth", tags=["auth"])

# Verifying against a real hash when the user does not exist keeps timing uniform.
_DUMMY_HASH = hash_password("timing-equaliser-not-a-password")


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


@router.post("/token", response_model=TokenOut)
def token(
    runtime: RuntimeDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> TokenOut:
    # A read-only session: the slow hash check must not hold the SQLite write lock.
    with Session(reader(runtime.engine)) as session:
        user = session.execute(select(User).where(col(User.username) == username)).scalar()
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not ok or not user.active:
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    assert user.id is not None
    ttl = runtime.settings.token_ttl_seconds
    return TokenOut(
        access_token=issue_token(
            secret=runtime.settings.secret_key,
            user_id=user.id,
            token_version=user.token_version,
            now=runtime.now(),
            ttl=ttl,
        ),
        expires_in=ttl,
        role=user.role,
    )
