"""Runtime configuration, read from the environment with the ``PACED_`` prefix."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///paced.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACED_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # Pool sized to Starlette's 40-thread pool for sync endpoints, so threads never queue on it.
    pool_size: int = 20
    max_overflow: int = 20

    admin_token: str | None = None
    # `paced serve` refuses a host beyond loopback without admin_token unless this is set.
    allow_unauthenticated_network: bool = False
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    max_items_per_request: int = Field(default=10_000, gt=0)
    max_batch_size: int = Field(default=4096, gt=0)
    # How often a replica pulls rows written by other processes into its in-memory index.
    sync_interval_s: float = Field(default=0.5, ge=0)
    # Memory per process for the text of drawn problems (0 turns the cache off).
    prompt_cache_mb: float = Field(default=256, ge=0)
    # Warm that cache in the background when a dataset is first used (cold draws stay fast).
    prompt_prefill: bool = True
    # Plain batch requests skip FastAPI's routing and body parsing (api/batch_fast_path.py);
    # off: every request goes through the route (same bytes, more CPU).
    batch_fast_path: bool = True
    # uvicorn's access log: a line per request (~0.1 ms of CPU each on the batch path).
    access_log: bool = False
    history_max_points: int = Field(default=512, ge=8)
    # A run's step snapshot is refreshed at most this often while its step stays the same.
    history_min_interval_s: float = Field(default=5.0, ge=0)
    log_level: str = "info"

    @field_validator("admin_token")
    @classmethod
    def _empty_token_means_none(cls, value: str | None) -> str | None:
        return value or None
