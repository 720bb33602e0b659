"""The webhook subscription API's bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from notify.models import WebhookSubscription


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2000, description="receiver, http:// or https:// (intranet is fine)"
    )
    secret: str = Field(max_length=200, description="HMAC key shared with the receiver, ≥ 16 chars")
    department_code: str | None = Field(
        default=None, max_length=16, description="only cases dispatched to this department"
    )
    area_code: str | None = Field(
        default=None, max_length=15, description="only cases inside this area (and escalations)"
    )
    events: list[str] | None = Field(
        default=None, max_length=32, description="only these event types (default: all)"
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    secret: str = Field(description="the first four characters and an ellipsis")
    department_code: str | None
    area_code: str | None
    events: list[str] | None
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, sub: WebhookSubscription) -> WebhookOut:
        assert sub.id is not None
        return cls(
            id=sub.id,
            url=sub.url,
            secret=sub.secret[:4] + "…",
            department_code=sub.department_code,
            area_code=sub.area_code,
            events=sub.event_types,
            active=sub.active,
            created_at=sub.created_at,
        )


class WebhookListOut(BaseModel):
    items: list[WebhookOut]
