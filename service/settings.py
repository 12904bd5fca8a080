"""Runtime configuration, read from the environment with the ``PACED_`` prefix.

Every field's description is its documentation: docs/settings.md is generated from this class
(`python -m service.settings_reference`; tests/service/test_settings_reference.py keeps the two
equal)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///paced.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACED_", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the database (`postgresql://...` in production). The "
        "default is a SQLite file `paced.db` in the server's working directory; the server "
        "logs its absolute path at start.",
    )
    pool_size: int = Field(
        20,
        description="Database connections kept open per process (sized to Starlette's "
        "40-thread pool with max_overflow, so request threads never queue on the pool).",
    )
    max_overflow: int = Field(20, description="Connections opened beyond pool_size under load.")
    admin_token: str | None = Field(
        None,
        description="Bearer token for admin operations (datasets, runs, overviews). Unset: the "
        "service is open (keep it on loopback). Each run also gets its own token.",
    )
    allow_unauthenticated_network: bool = Field(
        False,
        description="Let `paced serve` bind beyond loopback without admin_token (refused "
        "otherwise).",
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, gt=0, description="Largest request body accepted (413 beyond)."
    )
    max_items_per_request: int = Field(
        10_000,
        gt=0,
        description="Most problems or outcomes in one request (422 beyond); the client splits "
        "longer lists.",
    )
    max_batch_size: int = Field(4096, gt=0, description="Largest batch one request may draw.")
    sync_interval_s: float = Field(
        0.5,
        ge=0,
        description="How often a replica pulls rows written by other processes into its "
        "in-memory index (0: before every use).",
    )
    prompt_cache_mb: float = Field(
        256,
        ge=0,
        description="Memory per process for the texts of drawn problems (0 turns the cache "
        "off). Size it to the dataset: docs/operations.md, Memory.",
    )
    prompt_prefill: bool = Field(
        True,
        description="Warm that cache in the background when a dataset is first used (cold "
        "draws stay fast; paused while requests are in flight).",
    )
    batch_fast_path: bool = Field(
        True,
        description="Plain batch requests skip FastAPI's routing and body parsing "
        "(service/api/batch_fast_path.py); off: every request goes through the route (same "
        "bytes, more CPU).",
    )
    access_log: bool = Field(
        False,
        description="uvicorn's access log: a line per request (~0.1 ms of CPU each on the "
        "batch path).",
    )
    history_max_points: int = Field(
        512, ge=8, description="Most history snapshots kept per run (older ones are thinned)."
    )
    history_min_interval_s: float = Field(
        5.0,
        ge=0,
        description="A run's stored snapshot is rewritten at most this often while its step "
        "stays the same (the last state is stored when the interval ends; reads are always "
        "live).",
    )
    log_level: str = Field("info", description="The server's log level (debug, info, warning).")

    @field_validator("admin_token")
    @classmethod
    def _empty_token_means_none(cls, value: str | None) -> str | None:
        return value or None
