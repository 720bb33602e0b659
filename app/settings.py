"""Configuration from the environment (prefix GRIDGOV_), one object for the whole process."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDGOV_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./gridgov.db"
    secret_key: str = "dev-insecure-change-me"
    token_ttl_seconds: int = 12 * 3600
    # How long a process trusts an account it has loaded (disable/revoke take this long).
    auth_cache_seconds: float = Field(default=10.0, ge=0.0)
    # A point outside every grid but within this distance goes to the nearest grid.
    grid_tolerance_m: float = Field(default=50.0, ge=0.0, le=5000.0)
    # How often a process checks whether another process changed the grids.
    grid_refresh_seconds: float = Field(default=5.0, ge=0.0)
    # Yellow card (黄牌) when this fraction of the time limit has elapsed.
    warn_fraction: float = Field(default=0.8, gt=0.0, lt=1.0)
    # After the deadline, one escalation level (grid → village → town → district) per this
    # fraction of the original limit that passes, capped at the top level.
    escalate_every_fraction: float = Field(default=0.5, gt=0.0)
    office_hours: str = "08:30-12:00,14:00-17:30"
    timezone: str = "Asia/Shanghai"
    sweep_interval_seconds: int = Field(default=60, ge=1)
    sweep_batch: int = Field(default=500, ge=1)
    max_description_chars: int = Field(default=2000, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    wechat_token: str | None = None
    wechat_appid: str | None = None
    wechat_aes_key: str | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"


@lru_cache
def get_settings() -> Settings:
    return Settings()
