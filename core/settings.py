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
    # Live screens (GET /v1/events/stream): how often each process reads the change feed, and
    # how long one stream lasts before the browser reconnects (and catches up) by itself.
    stream_poll_seconds: float = Field(default=0.5, gt=0.0, le=10.0)
    stream_max_seconds: float = Field(default=300.0, gt=0.0)
    # The console's map: an intranet tile URL template ({z}/{x}/{y}); empty: no tiles, the
    # grid polygons on a plain background.
    console_tile_url: str = Field(default="", max_length=500)
    # Cases per sweep transaction (its rows locked that long: ~0.2 s for 1,000 on PostGIS).
    sweep_batch: int = Field(default=1000, ge=1)
    # How often the scheduler inside `serve` brings the 考核 rollup up to date (stats_daily):
    # the longest a late change to an already rolled day waits to show in the figures.
    stats_refresh_seconds: float = Field(default=300.0, gt=0.0, le=86400.0)
    # The scheduler retrains the classifier once this many corrections (a `recategorize`, or a
    # `register` that changed the subcategory) came in since the newest model (0: never),
    # checking every so many seconds.
    classifier_retrain_after: int = Field(default=20, ge=0)
    classifier_retrain_check_seconds: float = Field(default=600.0, ge=1.0, le=86400.0)
    # Early warning (预警): the scheduler's daily space-time scan at this local hour (and a spike
    # check every hour), over `warning_study_days` of cases; clusters reach at most this radius
    # and window; a warning needs a recurrence interval of at least `warning_min_recurrence_days`
    # (how often chance alone would give one this strong, in days of daily scans).
    warning_scan_enabled: bool = True
    warning_scan_hour: int = Field(default=6, ge=0, le=23)
    warning_study_days: int = Field(default=365, ge=28, le=3 * 366)
    warning_max_radius_m: float = Field(default=1000.0, ge=100.0, le=20_000.0)
    warning_max_window_days: int = Field(default=14, ge=1, le=60)
    warning_min_recurrence_days: float = Field(default=3000.0, ge=1.0, le=100_000.0)
    warning_replications: int = Field(default=999, ge=99, le=9999)
    # Per category (2 digits) or subcategory (4 digits, scanned on its own besides its
    # category): `off`, or its own radius/window/recurrence, e.g.
    # "1201=500m/14d/365,05=off,16=2000m/7d/730".
    warning_rules: str = Field(
        default="1201", pattern=r"^\s*(\d{2}(\d{2})?(=(off|\d+m/\d+d/\d+))?\s*(,\s*|$))*$"
    )
    # 延期: approvals per case at most (`approve_extension` and the centre's own `extend`).
    max_extensions: int = Field(default=2, ge=0, le=100)
    # A `dissatisfied` 回访 allows `reopen` of the closed case for this many (natural) days.
    reopen_after_visit_days: int = Field(default=7, ge=0, le=3650)
    # Stage limits in working hours: the unit accepts (签收) a dispatched case within the first,
    # the grid worker checks (核查) a resolved one within the second.
    accept_limit_working_hours: float = Field(default=2.0, gt=0.0, le=1000.0)
    verify_limit_working_hours: float = Field(default=8.0, gt=0.0, le=1000.0)
    max_description_chars: int = Field(default=2000, ge=1)
    # 并单 candidates at intake: per-category overrides of the built-in radius and window
    # (dispatch/duplicates.py), e.g. "05=200m/2d,16=800m/12h"; at most this many per case
    # (0: none are looked for).
    duplicate_rules: str = Field(
        default="", pattern=r"^\s*(\d{2}=\d+(\.\d+)?m/\d+[hd]\s*(,\s*|$))*$"
    )
    duplicate_max_candidates: int = Field(default=10, ge=0, le=50)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    # Attachments (photos): files under this directory, named by their sha256 (default: an
    # `attachments` directory beside the SQLite file, else in the working directory).
    attachment_dir: str | None = None
    # An upload over this many bytes is refused (413): the body is counted as it arrives.
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    # An image whose header claims more pixels (width × height) is refused before decoding.
    attachment_max_pixels: int = Field(default=40_000_000, ge=10_000, le=500_000_000)
    # Longest side of the thumbnail (`GET /v1/attachments/{id}?size=thumb`), in pixels.
    attachment_thumb_px: int = Field(default=320, ge=32, le=2048)
    # An upload no case uses after this many hours is removed (row and, if unused, file), by a
    # scheduler job run this often (one process at a time) or `gridgov attachments prune`.
    attachment_orphan_hours: float = Field(default=24.0, gt=0.0, le=24 * 365.0)
    attachment_prune_interval_seconds: float = Field(default=3600.0, ge=1.0, le=7 * 86400.0)
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
    # WeChat official account (channels/wechat). Inbound: the URL token, the EncodingAESKey
    # (and the previous one, during a rotation). Outbound: appid + secret get the access token
    # from the API at `wechat_api_base` (tests point it at a fake server).
    wechat_token: str | None = None
    wechat_appid: str | None = None
    wechat_aes_key: str | None = None
    wechat_aes_key_previous: str | None = None
    wechat_app_secret: str | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    # The template message of status pushes (its fields: case_no, status, time, remark); unset:
    # no pushes (the outbox routes nothing to the `wechat` subscription).
    wechat_template_id: str | None = None
    # The access token is refreshed this long before WeChat says it expires.
    wechat_token_refresh_ahead_seconds: float = Field(default=300.0, ge=0.0, le=3600.0)
    # Longest wait for an answer of the WeChat API (connect and read).
    wechat_api_timeout_seconds: float = Field(default=10.0, gt=0.0, le=120.0)
    # Residents' photos: how often the scheduler fetches queued media, and the first retry
    # after this (then doubling, at most an hour apart, until WeChat's 3-day expiry).
    wechat_media_interval_seconds: float = Field(default=5.0, gt=0.0, le=3600.0)
    wechat_media_retry_base_seconds: float = Field(default=30.0, gt=0.0, le=3600.0)
    # Inbound (`/wechat`): a request whose `timestamp` is further than this from now is refused
    # (replays); bodies over this size are refused (a message is a few hundred bytes).
    wechat_timestamp_window_seconds: int = Field(default=300, ge=1, le=86400)
    wechat_max_body_bytes: int = Field(default=65536, ge=1024, le=1_000_000)
    # Cases one resident may file through WeChat per local day (GRIDGOV_TIMEZONE).
    wechat_daily_report_limit: int = Field(default=5, ge=1, le=1000)
    # A resident's unfinished report is forgotten after this long without a message; photos
    # sent this soon after a report was filed are added to its case.
    wechat_draft_expiry_seconds: int = Field(default=7200, ge=60)
    wechat_photo_window_seconds: int = Field(default=600, ge=0)


@lru_cache
def get_settings() -> Settings:
    return Settings()
