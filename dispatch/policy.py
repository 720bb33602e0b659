"""Service-wide SLA and audit settings, as the rules take them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """Service-wide SLA and audit settings (from configuration)."""

    audit_key: str
    warn_fraction: float = 0.8
    escalate_every_fraction: float = 0.5
    max_extensions: int = 2
