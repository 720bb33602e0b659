"""HTTP glue for webhook subscriptions (admin only; the secret is never shown back whole)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.deps import ActorDep, RuntimeDep, SessionDep, require_role
from core.models import Role
from dispatch.schemas import MAX_ID
from notify import webhooks
from notify.schemas import WebhookIn, WebhookListOut, WebhookOut

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.get("", response_model=WebhookListOut)
def list_webhooks(session: SessionDep, actor: ActorDep) -> WebhookListOut:
    """The active subscriptions."""
    require_role(actor, Role.ADMIN)
    return WebhookListOut(items=[WebhookOut.of(s) for s in webhooks.subscriptions(session)])


@router.post("", response_model=WebhookOut, status_code=201)
def add_webhook(
    body: WebhookIn, session: SessionDep, runtime: RuntimeDep, actor: ActorDep
) -> WebhookOut:
    """Subscribe a receiver to case events: a department's, an area's, or (neither) all."""
    require_role(actor, Role.ADMIN)
    sub = webhooks.add(
        session,
        url=body.url,
        secret=body.secret,
        department_code=body.department_code,
        area_code=body.area_code,
        event_types=body.events,
        now=runtime.now(),
    )
    return WebhookOut.of(sub)


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
def remove_webhook(
    webhook_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep, actor: ActorDep
) -> Response:
    """Stop a subscription; its undelivered events are not sent."""
    require_role(actor, Role.ADMIN)
    webhooks.remove(session, webhook_id)
    return Response(status_code=204)
