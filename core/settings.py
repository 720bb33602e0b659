"""Configuration from the environment (prefix GRIDGOV_), one object for the whole process."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Settings no longer read, with where their job went: set, they stop the process rather than be
# ignored without a word.
RETIRED = {
    "GRIDGOV_ESCALATE_EVERY_FRACTION": (
        "the escalation steps are per urgency in the catalogue now (its `escalation` ladders; "
        "`gridgov taxonomy export` shows them)"
    ),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDGOV_", env_file=".env", extra="ignore")

    @model_validator(mode="after")
    def _no_retired(self) -> Settings:
        for name, instead in RETIRED.items():
            if name in os.environ:
                raise ValueError(f"{name} is no longer read: {instead}; unset it")
        return self

    database_url: str = "sqlite:///./gridgov.db"
    # Longest wait for a case's lock (row lock; SQLite: the write slot): then 409 `busy`.
    lock_timeout_seconds: float = Field(default=2.0, gt=0.0, le=60.0)
    # PostgreSQL cancels a statement of the service running longer: then 503 `unavailable`.
    statement_timeout_seconds: float = Field(default=5.0, gt=0.0, le=600.0)
    # Longest wait to open a database connection (libpq counts whole seconds, at least 2).
    db_connect_timeout_seconds: float = Field(default=3.0, gt=0.0, le=60.0)
    # Longest wait for a pooled connection: then 503 `unavailable`.
    pool_timeout_seconds: float = Field(default=3.0, gt=0.0, le=60.0)
    # Threads serving the sync endpoints of one process; the pool holds this many + 5 (see
    # app/db.py `pool_capacity`), so PostgreSQL needs workers × (threads + 5) connections.
    request_threads: int = Field(default=16, ge=1, le=500)
    # Signs tokens and keys the audit chain: required, ≥ 32 random bytes (see app/secret.py).
    secret_key: str = ""
    token_ttl_seconds: int = 12 * 3600
    # Clock skew tolerated on a token's `exp` and `iat` between processes.
    token_leeway_seconds: float = Field(default=5.0, ge=0.0, le=300.0)
    # How often a process reads the auth revision (logout, disabled account, revoked tokens):
    # revocation reaches every process within this time.
    auth_refresh_seconds: float = Field(default=0.5, ge=0.0, le=5.0)
    # How long a process trusts an account it has loaded when nothing bumps the auth revision
    # (e.g. a row edited by hand); every revocation through gridgov bumps it.
    auth_cache_seconds: float = Field(default=10.0, ge=0.0)
    # Login throttling (429 too_many_attempts): failures counted over a sliding window.
    login_window_seconds: int = Field(default=15 * 60, ge=1)
    login_max_failures_per_username: int = Field(default=20, ge=1)
    login_max_failures_per_address: int = Field(default=100, ge=1)
    # A point outside every grid but within this distance goes to the nearest grid.
    grid_tolerance_m: float = Field(default=50.0, ge=0.0, le=5000.0)
    # A grid import is refused for overlaps between areas of one level, gaps inside a village
    # and areas outside their parent larger than this many square metres (shared borders: 0).
    grid_import_tolerance_m2: float = Field(default=1.0, ge=0.0)
    # How often a process checks whether another process changed the grids.
    grid_refresh_seconds: float = Field(default=5.0, ge=0.0)
    # Yellow card (黄牌) when this fraction of the time limit has elapsed.
    warn_fraction: float = Field(default=0.8, gt=0.0, lt=1.0)
    # The escalation ladder after the deadline is catalogue data (`escalation`, per urgency).
    office_hours: str = "08:30-12:00,14:00-17:30"
    timezone: str = "Asia/Shanghai"
    sweep_interval_seconds: int = Field(default=60, ge=1)
    sweep_batch: int = Field(default=500, ge=1)
    # How often the scheduler inside `serve` brings the 考核 rollup up to date (stats_daily):
    # the longest a late change to an already rolled day waits to show in the figures.
    stats_refresh_seconds: float = Field(default=300.0, gt=0.0, le=86400.0)
    # 延期: approvals per case at most (`approve_extension` and the centre's own `extend`).
    max_extensions: int = Field(default=2, ge=0, le=100)
    # A `dissatisfied` 回访 allows `reopen` of the closed case for this many (natural) days.
    reopen_after_visit_days: int = Field(default=7, ge=0, le=3650)
    # Stage limits in working hours: the unit accepts (签收) a dispatched case within the first,
    # the grid worker checks (核查) a resolved one within the second.
    accept_limit_working_hours: float = Field(default=2.0, gt=0.0, le=1000.0)
    verify_limit_working_hours: float = Field(default=8.0, gt=0.0, le=1000.0)
    max_description_chars: int = Field(default=2000, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    # Webhook deliveries (the outbox): a failed POST is retried first after this many seconds,
    # then after twice as long each time (with up to 25 % jitter), at most an hour apart.
    outbox_retry_base_seconds: float = Field(default=10.0, gt=0.0, le=3600.0)
    # A delivery failing this long after its event turns `failed` (`gridgov outbox retry`).
    outbox_retry_horizon_seconds: float = Field(default=24 * 3600.0, ge=60.0)
    # Longest wait for a receiver's answer (connect and read), then the attempt failed.
    outbox_timeout_seconds: float = Field(default=10.0, gt=0.0, le=300.0)
    # How often a worker inside `gridgov serve` (and `gridgov outbox run`) looks for due ones.
    outbox_interval_seconds: float = Field(default=2.0, gt=0.0, le=3600.0)
    # Deliveries one worker claims at a time, sent by this many threads; a claim lasts this
    # long (a killed worker's claims go to another after it).
    outbox_batch: int = Field(default=50, ge=1, le=10_000)
    outbox_concurrency: int = Field(default=8, ge=1, le=200)
    outbox_lease_seconds: float = Field(default=120.0, gt=0.0)
    # `GET /metrics` (Prometheus text) and the per-request counting behind it.
    metrics_enabled: bool = True
    # When set, `/metrics` answers only to `Authorization: Bearer <token>` (else 401).
    metrics_token: str | None = None


@lru_cache
def get_settings() -> Settings:
    return Settings()
