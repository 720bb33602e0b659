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
    # The escalation ladders of a catalogue revision (a case climbs those of the revision it was
    # registered under; an import since changes new cases only), read when a case passes its
    # deadline. Default: the packaged catalogue's, whatever the revision.
    escalation: Callable[[int], EscalationLadders] = field(
        default=lambda _revision: default_escalation(), compare=False
    )
