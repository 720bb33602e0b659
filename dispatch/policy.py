"""Service-wide SLA and audit settings, as the rules take them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from taxonomy.catalogue import EscalationLadders, default_escalation


@dataclass(frozen=True)
class Policy:
    """Service-wide SLA and audit settings (from configuration)."""

    audit_key: str
    warn_fraction: float = 0.8
    max_extensions: int = 2
    reopen_after_visit_days: int = 7
    # Per-stage limits in working hours: 签收 by the unit, 核查 by the grid worker.
    accept_limit_hours: float = 2.0
    verify_limit_hours: float = 8.0
    # The escalation ladders in force: the catalogue's, read when a case passes its deadline
    # (an import changes them while the service runs). Default: the packaged catalogue's.
    escalation: Callable[[], EscalationLadders] = field(default=default_escalation, compare=False)
