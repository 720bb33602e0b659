"""`gridgov audit`: verify the tamper-evident case log, print signed checkpoints."""

from __future__ import annotations

import sys

import click

from app.cli.base import engine_from_settings, fail, signing_settings
from core.db import session_scope
from core.errors import GridgovError


@click.group()
def audit() -> None:
    """The tamper-evident case log."""


@audit.command("verify")
@click.option(
    "--head",
    "head",
    default=None,
    metavar="CHECKPOINT",
    help="a line printed by `gridgov audit checkpoint`: the log must still hold it",
)
def audit_verify(head: str | None) -> None:
    """Check the whole log: every case's chain and state, the global chain; exit 1 when
    anything was altered, removed or cut back (one line per problem, naming the case)."""
    from dispatch import audit as audit_chain
    from dispatch import service as dispatch_service

    settings = signing_settings()
    checkpoint = None
    if head is not None:
        try:
            checkpoint = audit_chain.read_checkpoint(head, key=settings.secret_key)
        except ValueError as exc:
            click.echo(f"log: --head refused: {exc}")
            click.echo("audit: the checkpoint is not valid", err=True)
            sys.exit(1)
    engine = dispatch_service.audit_reader(engine_from_settings())
    with session_scope(engine) as session:
        problems, cases = dispatch_service.verify_audit(
            session, key=settings.secret_key, checkpoint=checkpoint
        )
    for p in problems:
        if p.case_id is None:
            where = "log"
        else:
            where = f"case {p.case_id} ({p.case_no or 'case row missing'})"
        if p.seq is not None:
            where += f" row {p.seq}"
        click.echo(f"{where}: {p.problem}")
    if problems:
        click.echo(f"audit: {len(problems)} problem(s) in {cases} cases", err=True)
        sys.exit(1)
    click.echo(f"audit: {cases} cases, every chain intact")


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Print the signed head of the log as the last line; keep it outside the database, and
    `gridgov audit verify --head LINE` later proves the log was not cut back before it."""
    from dispatch import service as dispatch_service

    settings = signing_settings()
    engine = dispatch_service.audit_reader(engine_from_settings())
    try:
        with session_scope(engine) as session:
            token = dispatch_service.audit_checkpoint(session, key=settings.secret_key)
    except GridgovError as exc:
        fail(exc)
    click.echo(token)
