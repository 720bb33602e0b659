"""What every command shares: the database from the settings, and failing in the operator's
language with the stable error code (exit 2)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click
from sqlalchemy.engine import Engine

from core.db import make_engine
from core.errors import GridgovError, ImportRefused, Lang, language_of_locale
from core.settings import Settings


def engine_from_settings() -> Engine:
    """An engine on `GRIDGOV_DATABASE_URL` (the SQLite file by default)."""
    return make_engine(Settings().database_url)


def language() -> Lang:
    """Chinese for the operators, English when the locale (LC_ALL, LC_MESSAGES, LANG) is `en…`."""
    return language_of_locale(os.environ)


def fail(exc: GridgovError) -> NoReturn:
    """Say what was refused (code and message), then exit 2."""
    if isinstance(exc, ImportRefused):
        fail_import(exc)
    click.echo(f"error: {exc.code}: {exc.message(language())}", err=True)
    sys.exit(2)


def signing_settings() -> Settings:
    """Settings for a command that signs (tokens, the audit chain): exit 2 on a weak key."""
    from app.secret import InsecureSecretKey, require_secret_key

    settings = Settings()
    try:
        require_secret_key(settings)
    except InsecureSecretKey as exc:
        click.echo(f"error: insecure_secret_key: {exc}", err=True)
        sys.exit(2)
    return settings


def fail_import(exc: ImportRefused) -> NoReturn:
    """Every problem of a refused import file, one a line."""
    click.echo(f"error: {exc.code}: {exc.summary(language())}", err=True)
    for problem in exc.problems:
        click.echo(f"- {problem}", err=True)
    sys.exit(2)
