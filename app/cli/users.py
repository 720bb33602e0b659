"""`gridgov users`: accounts."""

from __future__ import annotations

import click

from app.cli.base import engine_from_settings, fail, signing_settings
from core.clock import utcnow
from core.db import session_scope
from core.errors import GridgovError
from core.models import Role
from core.settings import Settings


@click.group()
def users() -> None:
    """Accounts."""


@users.command("add")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--username", required=True)
@click.option("--password", default=None, help="prompted for when omitted")
@click.option("--grid", "grids", multiple=True, help="grid code (grid_worker; repeatable)")
@click.option("--department", default=None, help="department code (department role)")
@click.option(
    "--area",
    "area_code",
    default=None,
    help="dispatcher: the 镇街 (9 digits) or 村居 (12 digits) of its command centre",
)
@click.option("--name", "display_name", default="", help="display name")
@click.option("--print-token", is_flag=True, help="print a bearer token as the last line")
def users_add(
    role: str,
    username: str,
    password: str | None,
    grids: tuple[str, ...],
    department: str | None,
    area_code: str | None,
    display_name: str,
    print_token: bool,
) -> None:
    """Create an account."""
    from app.migrate import upgrade
    from app.users import create_user
    from core.security import issue_token

    settings = signing_settings() if print_token else Settings()
    if password is None:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    engine = engine_from_settings()
    upgrade(engine)
    now = utcnow()
    try:
        with session_scope(engine) as session:
            user = create_user(
                session,
                username=username,
                password=password,
                role=Role(role),
                grid_codes=grids,
                department_code=department,
                area_code=area_code,
                display_name=display_name,
                now=now,
            )
            user_id, version = user.id, user.token_version
    except GridgovError as exc:
        fail(exc)
    click.echo(f"created {role} {username} (id {user_id})")
    if print_token:
        assert user_id is not None
        click.echo(
            issue_token(
                secret=settings.secret_key,
                user_id=user_id,
                token_version=version,
                now=now,
                ttl=settings.token_ttl_seconds,
            )
        )


def _account_change(username: str, change: str) -> None:
    from app.users import revoke_tokens, set_active

    engine = engine_from_settings()
    try:
        with session_scope(engine) as session:
            if change == "revoke-tokens":
                revoke_tokens(session, username=username, now=utcnow())
            else:
                set_active(session, username=username, active=change == "enable", now=utcnow())
    except GridgovError as exc:
        fail(exc)


@users.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Refuse the account and every token it holds, in every process within a second."""
    _account_change(username, "disable")
    click.echo(f"disabled {username}; its tokens are revoked")


@users.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Allow a disabled account to sign in again (its old tokens stay revoked)."""
    _account_change(username, "enable")
    click.echo(f"enabled {username}")


@users.command("revoke-tokens")
@click.argument("username")
def users_revoke_tokens(username: str) -> None:
    """Sign the account out everywhere: every token issued so far stops working."""
    _account_change(username, "revoke-tokens")
    click.echo(f"revoked every token of {username}")
