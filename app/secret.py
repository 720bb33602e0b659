"""The secret key: signs bearer tokens and keys the audit chain, so a weak one is refused.

One check (`require_secret_key`) is used by `create_app`, `gridgov serve` and every command
that signs; `demo_secret_key` makes (once) and reuses a random key kept beside a SQLite file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from core.settings import Settings

MIN_SECRET_BYTES = 32
# Values published in code, docs and tutorials: a token signed with one of them would be
# accepted anywhere the operator kept it.
KNOWN_DEFAULTS = frozenset(
    {
        "dev-insecure-change-me",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "secret",
        "secret-key",
        "secret_key",
        "secretkey",
        "supersecret",
        "super-secret",
        "your-secret-key",
        "your_secret_key",
        "password",
        "default",
        "insecure",
        "test",
        "testing",
        "dev",
        "development",
        "gridgov",
        "test-secret-key",
        "cli-test-secret",
        "bench-intake-secret-key",
        "0" * 32,
        "0" * 64,
    }
)
_HOW_TO = (
    "set GRIDGOV_SECRET_KEY to a random value of at least 32 bytes, the same in every process, "
    "e.g. the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
)


class InsecureSecretKey(ValueError):
    """The configured key must not be used; the message says why and what to do."""


def secret_key_problem(key: str | None) -> str | None:
    """Why `key` (None: not set at all) cannot sign anything, or None when it can."""
    if key is None:
        return "GRIDGOV_SECRET_KEY is not set (it signs tokens and keys the audit log)"
    if not key.strip():
        return "GRIDGOV_SECRET_KEY is empty"
    if key.strip().lower() in KNOWN_DEFAULTS:
        return "GRIDGOV_SECRET_KEY is a published default value: anyone could forge tokens with it"
    size = len(key.encode("utf-8"))
    if size < MIN_SECRET_BYTES:
        return f"GRIDGOV_SECRET_KEY is {size} bytes long; at least {MIN_SECRET_BYTES} are needed"
    if len(set(key)) < 8:
        return "GRIDGOV_SECRET_KEY repeats a few characters: it is not a random value"
    return None


def require_secret_key(settings: Settings) -> str:
    """The key to sign with, or `InsecureSecretKey` naming the defect."""
    key = settings.secret_key if "secret_key" in settings.model_fields_set else None
    problem = secret_key_problem(key)
    if problem is not None:
        raise InsecureSecretKey(f"{problem}; {_HOW_TO}")
    return settings.secret_key


def is_unset(settings: Settings) -> bool:
    """Not configured at all (or configured empty): the case `serve --demo` fills in."""
    return "secret_key" not in settings.model_fields_set or not settings.secret_key.strip()


def demo_secret_key(database_url: str) -> tuple[str, Path, bool]:
    """(key, file, created): a random key kept in `<SQLite file>.secret` (mode 0600), reused."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        raise InsecureSecretKey(
            "GRIDGOV_SECRET_KEY is not set, and --demo keeps a generated key only beside a "
            f"SQLite file; {_HOW_TO}"
        )
    path = Path(f"{url.database}.secret")
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        kept = path.read_text("utf-8").strip()
        problem = secret_key_problem(kept)
        if problem is not None:
            raise InsecureSecretKey(
                f"the demo key file {path} is unusable ({problem}); delete it or {_HOW_TO}"
            ) from None
        return kept, path, False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return key, path, True
