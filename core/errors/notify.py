"""Errors of notifications: webhook subscriptions and the outbox's deliveries."""

from __future__ import annotations

from core.errors.base import NotFound, ValidationFailed


class InvalidWebhookUrl(ValidationFailed):
    """A webhook URL must be an absolute http:// or https:// URL with a host."""

    code = "invalid_webhook_url"
    zh = "回调地址 {url!r} 无效：须为带主机名的 http:// 或 https:// 地址"
    en = "webhook URL {url!r} is invalid: it must be an http:// or https:// URL with a host"
    example = {"url": "ftp://example"}


class WeakWebhookSecret(ValidationFailed):
    """A webhook secret must have at least 16 characters (it keys the signature)."""

    code = "weak_webhook_secret"
    zh = "回调密钥至少 {min_chars} 个字符"
    en = "a webhook secret needs at least {min_chars} characters"
    example = {"min_chars": 16}


class UnknownEventType(ValidationFailed):
    """An event type outside the contract's list (case.reported … case.escalated)."""

    code = "unknown_event_type"
    zh = "未知事件类型 {event_type!r}"
    en = "unknown event type {event_type!r}"
    example = {"event_type": "case.lost"}


class UnknownWebhookArea(ValidationFailed):
    """A webhook's area must be an existing area (district, 镇街, 村居 or grid)."""

    code = "unknown_webhook_area"
    zh = "区域 {area!r} 不存在"
    en = "no area {area!r}"
    example = {"area": "440604011"}


class WebhookNotFound(NotFound):
    """No webhook subscription with this id."""

    code = "webhook_not_found"
    zh = "回调订阅 {webhook_id} 不存在"
    en = "no webhook subscription {webhook_id}"
    example = {"webhook_id": 7}


class DeliveryNotFound(NotFound):
    """No outbox delivery with this id."""

    code = "delivery_not_found"
    zh = "投递记录 {delivery_id} 不存在"
    en = "no outbox delivery {delivery_id}"
    example = {"delivery_id": 7}
