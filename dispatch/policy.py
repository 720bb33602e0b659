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
    reopen_after_visit_days: int = 7
    # Per-stage limits in working hours: 签收 by the unit, 核查 by the grid worker.
    accept_limit_hours: float = 2.0
    verify_limit_hours: float = 8.0
