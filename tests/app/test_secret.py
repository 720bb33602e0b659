"""The secret key: refused when missing or guessable (serve, create_app, signing commands);
`serve --demo` makes one, keeps it beside the SQLite file and reuses it.

The check reads no database, so these tests need no backend; the demo key is SQLite-only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

from app.cli import main
from app.main import app_from_env, create_app
from app.secret import InsecureSecretKey
from core.settings import Settings, get_settings

# name: (GRIDGOV_SECRET_KEY or None for unset, what the refusal says)
BAD_KEYS: dict[str, tuple[str | None, str]] = {
    "unset": (None, "GRIDGOV_SECRET_KEY is not set"),
    "empty": ("", "GRIDGOV_SECRET_KEY is empty"),
    "short": ("k9Qz-31xP_u7", "GRIDGOV_SECRET_KEY is 12 bytes long; at least 32 are needed"),
    "old-default": ("dev-insecure-change-me", "a published default value"),
    "changeme": ("changeme", "a published default value"),
    "repeated": ("a" * 40, "not a random value"),
}
GOOD_KEY = "Vq3n8TzL0pXe6RwY1uKb9sHd4Jf7Mc2A"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SQLite path, no key and no .env; uvicorn never really starts."""
    db = tmp_path / "gridgov.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("GRIDGOV_SECRET_KEY", "placeholder")  # so teardown restores the original
    monkeypatch.delenv("GRIDGOV_SECRET_KEY")
    monkeypatch.setattr(uvicorn, "run", _fake_uvicorn_run)
    _started.clear()
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


_started: list[dict[str, Any]] = []


def _fake_uvicorn_run(app: str, **kwargs: Any) -> None:
    _started.append({"app": app, "key": os.environ.get("GRIDGOV_SECRET_KEY"), **kwargs})


def _set_key(monkeypatch: pytest.MonkeyPatch, key: str | None) -> None:
    if key is not None:
        monkeypatch.setenv("GRIDGOV_SECRET_KEY", key)


@pytest.mark.parametrize("name", BAD_KEYS)
def test_create_app_refuses_an_insecure_secret_key(
    name: str, cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, reason = BAD_KEYS[name]
    _set_key(monkeypatch, key)
    with pytest.raises(InsecureSecretKey, match=reason):
        create_app(settings=Settings())
    with pytest.raises(InsecureSecretKey, match=reason):
        app_from_env()


@pytest.mark.parametrize(
    ("name", "demo"),
    [(name, False) for name in BAD_KEYS]
    # --demo makes a key only when none is set (see the demo test below); a bad one it refuses.
    + [(name, True) for name in BAD_KEYS if name not in ("unset", "empty")],
)
def test_serve_refuses_an_insecure_secret_key_and_says_why(
    name: str, demo: bool, cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, reason = BAD_KEYS[name]
    _set_key(monkeypatch, key)
    result = CliRunner().invoke(main, ["serve", *(["--demo"] if demo else [])])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # a message, no traceback
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: insecure_secret_key: ")
    assert reason in result.stderr
    assert "secrets.token_urlsafe" in result.stderr  # and how to make a good one
    assert _started == []
    assert not cli_env.exists()  # refused before touching the database


@pytest.mark.parametrize(
    "command",
    [
        [
            "users",
            "add",
            "--role",
            "admin",
            "--username",
            "boss",
            "--password",
            "long-enough",
            "--print-token",
        ],
        ["sweep"],
        ["audit", "verify"],
    ],
    ids=["users-add-print-token", "sweep", "audit-verify"],
)
@pytest.mark.parametrize("name", ["unset", "short", "old-default"])
def test_signing_commands_refuse_an_insecure_secret_key(
    name: str, command: list[str], cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, reason = BAD_KEYS[name]
    _set_key(monkeypatch, key)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error: insecure_secret_key: ")
    assert reason in result.stderr
    assert not cli_env.exists()


def test_serve_starts_with_a_proper_key(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDGOV_SECRET_KEY", GOOD_KEY)
    result = CliRunner().invoke(main, ["serve", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert _started == [
        {
            "app": "app.main:app_from_env",
            "key": GOOD_KEY,
            "factory": True,
            "host": "127.0.0.1",
            "port": 8000,
            "workers": 2,
            "timeout_graceful_shutdown": 5,  # open console streams do not hold a stop
        }
    ]
    assert not Path(f"{cli_env}.secret").exists()


def test_serve_demo_without_a_key_generates_keeps_and_reuses_one(cli_env: Path) -> None:
    first = CliRunner().invoke(main, ["serve", "--demo", "--workers", "2"])
    assert first.exit_code == 0, first.output
    kept = Path(f"{cli_env}.secret")
    assert f"generated a random key kept in {kept} (mode 0600)" in first.output
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    key = kept.read_text("utf-8").strip()
    assert len(key.encode()) >= 32
    # The workers are started through the environment: they see the same key.
    assert _started[-1]["key"] == key
    assert _started[-1]["workers"] == 2
    assert os.environ["GRIDGOV_SECRET_KEY"] == key
    assert get_settings().secret_key == key
    app_from_env()  # what each worker process does: accepted

    del os.environ["GRIDGOV_SECRET_KEY"]
    second = CliRunner().invoke(main, ["serve", "--demo"])
    assert second.exit_code == 0, second.output
    assert f"using a random key kept in {kept}" in second.output
    assert _started[-1]["key"] == key
    assert kept.read_text("utf-8").strip() == key


def test_serve_demo_on_postgresql_without_a_key_is_refused(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(main, ["serve", "--demo"])
    assert result.exit_code == 2
    assert "beside a SQLite file" in result.stderr
    assert _started == []
