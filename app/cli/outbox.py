"""`gridgov webhooks` (subscriptions) and `gridgov outbox` (the delivery worker, its backlog)."""

from __future__ import annotations

import json
import logging
import threading

import click

from app.cli.base import engine_from_settings, fail
from core.db import session_scope
from core.errors import GridgovError
from core.settings import Settings


@click.group()
def webhooks() -> None:
    """Webhook subscriptions: who is told of case events (signed POSTs)."""


@webhooks.command("add")
@click.option("--url", required=True, help="the receiver (http:// or https://; intranet is fine)")
@click.option("--secret", required=True, help="signing key shared with the receiver (≥ 16 chars)")
@click.option("--department", default=None, help="only cases dispatched to this department")
@click.option("--area", default=None, help="only cases inside this area (and its escalations)")
@click.option("--events", default=None, help="only these types, comma-separated (case.…)")
def webhooks_add(
    url: str, secret: str, department: str | None, area: str | None, events: str | None
) -> None:
    """Subscribe a receiver; without --department/--area it gets every case's events. Prints
    the subscription id as the last line."""
    from core.clock import utcnow
    from notify import webhooks as service

    types = None if events is None else [t.strip() for t in events.split(",") if t.strip()]
    try:
        with session_scope(engine_from_settings()) as session:
            sub = service.add(
                session,
                url=url,
                secret=secret,
                department_code=department,
                area_code=area,
                event_types=types,
                now=utcnow(),
            )
            sub_id = sub.id
    except GridgovError as exc:
        fail(exc)
    click.echo(sub_id)


@webhooks.command("list")
def webhooks_list() -> None:
    """The active subscriptions as JSON (secrets shortened)."""
    from notify import webhooks as service
    from notify.schemas import WebhookOut

    with session_scope(engine_from_settings()) as session:
        items = [WebhookOut.of(s).model_dump(mode="json") for s in service.subscriptions(session)]
    click.echo(json.dumps(items, ensure_ascii=False, indent=2))


@webhooks.command("remove")
@click.argument("subscription_id", type=int)
def webhooks_remove(subscription_id: int) -> None:
    """Stop a subscription (its undelivered events are dropped, marked failed)."""
    from notify import webhooks as service

    try:
        with session_scope(engine_from_settings()) as session:
            service.remove(session, subscription_id)
    except GridgovError as exc:
        fail(exc)
    click.echo(f"removed {subscription_id}")


@click.group()
def outbox() -> None:
    """The outbox: deliver case events to the webhooks, list and re-send deliveries."""


@outbox.command("run")
@click.option("--once", is_flag=True, help="deliver what is due now, then exit (cron, tests)")
def outbox_run(once: bool) -> None:
    """Deliver due events until interrupted (several workers may run on one PostgreSQL)."""
    from app.runtime import build_runtime
    from notify.delivery import Breaker, drain, make_client
    from notify.webhooks import policy_from

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    runtime = build_runtime(settings, engine_from_settings())
    policy = policy_from(settings)
    stop = threading.Event()
    breaker = Breaker(policy.retry_base_seconds)
    with make_client(policy) as client:
        while True:
            try:
                totals = drain(
                    runtime.engine,
                    clock=runtime.now,
                    policy=policy,
                    catalogue=lambda: runtime.taxonomy.get().catalogue,
                    client=client,
                    breaker=breaker,
                )
            except KeyboardInterrupt:
                break
            if once:
                click.echo(json.dumps(totals))
                break
            try:
                stop.wait(settings.outbox_interval_seconds)
            except KeyboardInterrupt:
                break


@outbox.command("list")
@click.option("--failed", is_flag=True, help="only those given up on (retry them)")
@click.option("--limit", default=200, show_default=True, type=int)
def outbox_list(failed: bool, limit: int) -> None:
    """Deliveries, newest first, as JSON."""
    from notify import webhooks as service

    with session_scope(engine_from_settings()) as session:
        items = service.deliveries(session, failed_only=failed, limit=limit)
    click.echo(json.dumps(items, ensure_ascii=False, indent=2))


@outbox.command("retry")
@click.argument("delivery_id", type=int)
def outbox_retry(delivery_id: int) -> None:
    """Send a delivery again now (with a fresh retry horizon)."""
    from core.clock import utcnow
    from notify import webhooks as service

    settings = Settings()
    try:
        with session_scope(engine_from_settings()) as session:
            service.retry(
                session,
                delivery_id,
                now=utcnow(),
                horizon_seconds=settings.outbox_retry_horizon_seconds,
            )
    except GridgovError as exc:
        fail(exc)
    click.echo(f"delivery {delivery_id} due now")
