"""Bearer tokens (PyJWT), revocation across processes, login throttling (both databases)."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app.cli import main as cli_main
from app.main import create_app
from app.users import create_user
from core.db import make_engine, session_scope
from core.models import LoginAttempt, RevokedToken, Role, User
from core.security import issue_token
from core.settings import Settings
from tests.conftest import ROOT, SECRET, Api, FakeClock

PASSWORD = "right-horse-battery"
ANY_PATH = "/v1/taxonomy"  # any endpoint that needs a token and touches no case


# A cheap argon2 hash (the parameters live in the hash): the throttling tests sign in ~20
# times each, and the production cost (~0.1-0.5 s a check here) would dominate the run.
_CHEAP_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


def _new_user(engine: Engine, clock: FakeClock, role: Role = Role.DISPATCHER) -> str:
    username = f"u{uuid.uuid4().hex[:12]}"
    with session_scope(engine) as session:
        create_user(
            session,
            username=username,
            password=PASSWORD,
            password_hash=_CHEAP_HASH,
            role=role,
            now=clock.now,
        )
    return username


def _user_id(engine: Engine, username: str) -> int:
    with Session(engine) as session:
        uid = session.execute(select(col(User.id)).where(col(User.username) == username)).scalar()
    assert uid is not None
    return int(uid)


def _client(app: FastAPI, address: str | None = None) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, client=(address or _address(), 50000))


def _address() -> str:
    """A client address of its own, so attempts of other tests never count against it."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def _login(client: TestClient, username: str, password: str) -> Any:
    return client.post("/v1/auth/token", data={"username": username, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def second_app(settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """Another process on the same database: its own app, engine and caches, the same clock."""
    engine = make_engine(settings.database_url)
    app = create_app(settings=settings, engine=engine, clock=clock)
    with _client(app) as client:
        yield client
    engine.dispose()


# -- tokens -------------------------------------------------------------------------------------


def test_login_token_is_a_jwt_with_sub_iat_exp_jti(
    client: TestClient, engine: Engine, clock: FakeClock, settings: Settings
) -> None:
    username = _new_user(engine, clock)
    res = _login(client, username, PASSWORD)
    assert res.status_code == 200, res.text
    token = res.json()["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["sub"] == str(_user_id(engine, username))
    assert claims["iat"] == int(clock.now.timestamp())
    assert claims["exp"] - claims["iat"] == settings.token_ttl_seconds
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    assert claims["ver"] == 0
    assert client.get(ANY_PATH, headers=_bearer(token)).status_code == 200


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the forger's
@pytest.mark.parametrize(
    "key",
    ["dev-insecure-change-me", "an-attacker-guess-that-is-long-enough-0123456789"],
    ids=["old-default-key", "wrong-key"],
)
def test_token_forged_with_another_key_is_401(api: Api, engine: Engine, key: str) -> None:
    admin = _user_id(engine, "admin")
    forged = issue_token(secret=key, user_id=admin, token_version=0, now=api.clock.now, ttl=3600)
    res = api.client.get(ANY_PATH, headers=_bearer(forged))
    assert res.status_code == 401
    assert res.json()["error"] == "invalid_token"


@pytest.mark.parametrize("missing", ["sub", "iat", "exp", "jti", "ver"])
def test_token_without_a_required_claim_is_401(api: Api, engine: Engine, missing: str) -> None:
    now = int(api.clock.now.timestamp())
    claims = {
        "sub": str(_user_id(engine, "admin")),
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "ver": 0,
    }
    del claims[missing]
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    res = api.client.get(ANY_PATH, headers=_bearer(token))
    assert res.status_code == 401
    assert res.json()["error"] == "invalid_token"


def test_unsigned_token_is_401(api: Api, engine: Engine) -> None:
    now = int(api.clock.now.timestamp())
    claims = {"sub": str(_user_id(engine, "admin")), "iat": now, "exp": now + 60, "jti": "x"}
    token = jwt.encode({**claims, "ver": 0}, key=None, algorithm="none")
    res = api.client.get(ANY_PATH, headers=_bearer(token))
    assert res.status_code == 401
    assert res.json()["error"] == "invalid_token"


def test_token_expires_after_its_ttl_and_the_leeway(api: Api, settings: Settings) -> None:
    headers = api.headers("admin")  # valid for an hour from the test clock
    api.clock.advance(seconds=3600 + settings.token_leeway_seconds - 1)
    assert api.client.get(ANY_PATH, headers=headers).status_code == 200
    api.clock.advance(seconds=2)
    res = api.client.get(ANY_PATH, headers=headers)
    assert res.status_code == 401
    assert res.json()["error"] == "token_expired"


# -- revocation ---------------------------------------------------------------------------------


def test_logout_revokes_that_token_on_another_process_within_a_second(
    api: Api, second_app: TestClient, engine: Engine
) -> None:
    username = _new_user(engine, api.clock)
    first, other = api.token(username), api.token(username)
    assert second_app.get(ANY_PATH, headers=_bearer(first)).status_code == 200  # now cached there
    assert api.client.post("/v1/auth/logout", headers=_bearer(first)).status_code == 204
    assert api.client.get(ANY_PATH, headers=_bearer(first)).status_code == 401
    api.clock.advance(seconds=1)
    res = second_app.get(ANY_PATH, headers=_bearer(first))
    assert res.status_code == 401
    assert res.json()["error"] == "token_revoked"
    assert second_app.get(ANY_PATH, headers=_bearer(other)).status_code == 200
    assert api.client.get(ANY_PATH, headers=_bearer(other)).status_code == 200


def test_logout_purges_revocations_of_expired_tokens(api: Api, engine: Engine) -> None:
    username = _new_user(engine, api.clock)
    uid = _user_id(engine, username)
    short = issue_token(secret=SECRET, user_id=uid, token_version=0, now=api.clock.now, ttl=60)
    assert api.client.post("/v1/auth/logout", headers=_bearer(short)).status_code == 204
    api.clock.advance(seconds=120)
    assert api.client.post("/v1/auth/logout", headers=api.headers(username)).status_code == 204
    with Session(engine) as session:
        rows = session.execute(
            select(col(RevokedToken.expires_at)).where(col(RevokedToken.user_id) == uid)
        ).all()
    assert len(rows) == 1
    assert rows[0][0] > api.clock.now


def _cli(settings: Settings, *args: str) -> Any:
    env = {"GRIDGOV_DATABASE_URL": settings.database_url, "GRIDGOV_SECRET_KEY": SECRET}
    return CliRunner().invoke(cli_main, list(args), env=env, catch_exceptions=False)


def test_disabled_user_is_refused_on_another_process_within_a_second(
    api: Api, second_app: TestClient, engine: Engine, settings: Settings
) -> None:
    username = _new_user(engine, api.clock)
    token = api.token(username)
    assert second_app.get(ANY_PATH, headers=_bearer(token)).status_code == 200
    assert api.client.get(ANY_PATH, headers=_bearer(token)).status_code == 200
    result = _cli(settings, "users", "disable", username)
    assert result.exit_code == 0, result.output
    api.clock.advance(seconds=1)
    for client in (second_app, api.client):
        res = client.get(ANY_PATH, headers=_bearer(token))
        assert res.status_code == 401
        assert res.json()["error"] == "invalid_token"  # the account is refused, not the token
    assert _login(api.client, username, PASSWORD).status_code == 401


def test_revoke_tokens_signs_the_user_out_of_every_process_within_a_second(
    api: Api, second_app: TestClient, engine: Engine, settings: Settings
) -> None:
    username = _new_user(engine, api.clock)
    token = api.token(username)
    assert second_app.get(ANY_PATH, headers=_bearer(token)).status_code == 200
    assert _cli(settings, "users", "revoke-tokens", username).exit_code == 0
    api.clock.advance(seconds=1)
    res = second_app.get(ANY_PATH, headers=_bearer(token))
    assert res.status_code == 401
    assert res.json()["error"] == "token_revoked"
    fresh = api.token(username)
    assert second_app.get(ANY_PATH, headers=_bearer(fresh)).status_code == 200


def test_users_disable_names_an_unknown_user(settings: Settings) -> None:
    result = CliRunner().invoke(
        cli_main,
        ["users", "disable", "nobody-such"],
        env={"GRIDGOV_DATABASE_URL": settings.database_url},
    )
    assert result.exit_code == 2
    assert "unknown_user" in result.output


# -- login throttling ---------------------------------------------------------------------------


def test_21st_wrong_password_and_the_right_one_get_429_with_retry_after(
    client: TestClient, engine: Engine, clock: FakeClock, settings: Settings
) -> None:
    username = _new_user(engine, clock)
    with _client(client.app) as c:  # type: ignore[arg-type]
        for _ in range(20):
            res = _login(c, username, "wrong-password")
            assert res.status_code == 401
            assert res.json()["error"] == "invalid_credentials"
        for password in ("wrong-password", PASSWORD):
            res = _login(c, username, password)
            assert res.status_code == 429
            assert res.json()["error"] == "too_many_attempts"
            assert 0 < int(res.headers["Retry-After"]) <= settings.login_window_seconds


def test_parallel_guesses_cannot_overshoot_the_limit(
    client: TestClient, engine: Engine, clock: FakeClock
) -> None:
    username = _new_user(engine, clock)
    with _client(client.app) as c, ThreadPoolExecutor(max_workers=10) as pool:  # type: ignore[arg-type]
        codes = list(pool.map(lambda _: _login(c, username, "wrong").status_code, range(30)))
    assert sorted(codes) == [401] * 20 + [429] * 10


def test_login_works_again_once_the_window_has_passed(
    client: TestClient, engine: Engine, clock: FakeClock
) -> None:
    username = _new_user(engine, clock)
    with _client(client.app) as c:  # type: ignore[arg-type]
        for _ in range(20):
            assert _login(c, username, "wrong-password").status_code == 401
            clock.advance(seconds=10)
        res = _login(c, username, PASSWORD)
        assert res.status_code == 429
        wait = int(res.headers["Retry-After"])
        clock.advance(seconds=wait - 1)
        assert _login(c, username, PASSWORD).status_code == 429
        clock.advance(seconds=1)
        assert _login(c, username, PASSWORD).status_code == 200


def test_other_addresses_do_not_unlock_a_username(
    client: TestClient, engine: Engine, clock: FakeClock
) -> None:
    username = _new_user(engine, clock)
    for _ in range(20):
        with _client(client.app) as c:  # type: ignore[arg-type]
            assert _login(c, username, "wrong-password").status_code == 401
    with _client(client.app) as c:  # type: ignore[arg-type]
        assert _login(c, username, PASSWORD).status_code == 429


def test_a_success_restarts_the_count_for_that_username(
    client: TestClient, engine: Engine, clock: FakeClock
) -> None:
    username = _new_user(engine, clock)
    with _client(client.app) as c:  # type: ignore[arg-type]
        for _ in range(19):
            assert _login(c, username, "wrong-password").status_code == 401
        assert _login(c, username, PASSWORD).status_code == 200
        for _ in range(19):
            assert _login(c, username, "wrong-password").status_code == 401
        assert _login(c, username, PASSWORD).status_code == 200


def test_per_address_limit_locks_every_username_from_that_address(
    settings: Settings, engine: Engine, clock: FakeClock
) -> None:
    strict = settings.model_copy(update={"login_max_failures_per_address": 5})
    app = create_app(settings=strict, engine=engine, clock=clock)
    guessed, username = _new_user(engine, clock), _new_user(engine, clock)
    address = _address()
    with _client(app, address) as c:
        for _ in range(5):
            assert _login(c, guessed, "wrong-password").status_code == 401
        res = _login(c, username, PASSWORD)
        assert res.status_code == 429
        assert res.json()["error"] == "too_many_attempts"
        assert int(res.headers["Retry-After"]) > 0
    with _client(app) as elsewhere:
        assert _login(elsewhere, username, PASSWORD).status_code == 200


def test_failures_lockouts_and_successes_are_logged_and_recorded(
    settings: Settings, engine: Engine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    strict = settings.model_copy(update={"login_max_failures_per_username": 1})
    app = create_app(settings=strict, engine=engine, clock=clock)
    username = _new_user(engine, clock)
    address = _address()
    caplog.set_level(logging.INFO, logger="gridgov.auth")
    with _client(app, address) as c:
        assert _login(c, username, PASSWORD).status_code == 200
        assert _login(c, username, "wrong-password").status_code == 401
        assert _login(c, username, PASSWORD).status_code == 429
    lines = [r.getMessage() for r in caplog.records if r.name == "gridgov.auth"]
    assert [line.split(":")[0] for line in lines] == [
        "login success",
        "login failure",
        "login refused, too many failures",
    ]
    assert all(username in line and address in line for line in lines)
    with Session(engine) as session:
        outcomes = session.execute(
            select(col(LoginAttempt.outcome), col(LoginAttempt.address))
            .where(col(LoginAttempt.username) == username)
            .order_by(col(LoginAttempt.id))
        ).all()
    assert [tuple(row) for row in outcomes] == [
        ("success", address),
        ("failure", address),
        ("locked", address),
    ]


def test_argon2_dummy_hash_is_not_computed_at_import() -> None:
    code = (
        "import argon2\n"
        "calls = []\n"
        "real = argon2.PasswordHasher.hash\n"
        "def counted(self, *a, **k):\n"
        "    calls.append(1)\n"
        "    return real(self, *a, **k)\n"
        "argon2.PasswordHasher.hash = counted\n"
        "import app.main, app.routes.auth, app.cli\n"
        "print(len(calls))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"
