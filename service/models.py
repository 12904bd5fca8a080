"""Database schema (SQLAlchemy 2). Alembic migrations mirror this file; a test checks drift."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; BIGINT elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped whenever existing problems are overwritten, so every replica's prompt cache
    # learns (within its sync interval) that what it holds may be stale.
    content_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Problem(Base):
    __tablename__ = "problems"
    __table_args__ = (
        UniqueConstraint("dataset_id", "external_id"),
        # Indexes pull "problems added after id X" as a range scan instead of a dataset scan.
        Index("ix_problems_dataset_id_id", "dataset_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(256))
    prompt: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    kernel_alpha: Mapped[float] = mapped_column(Double)
    kernel_beta: Mapped[float] = mapped_column(Double)
    estimator_kind: Mapped[str] = mapped_column(String(16))
    prior_alpha: Mapped[float] = mapped_column(Double)
    prior_beta: Mapped[float] = mapped_column(Double)
    half_life_steps: Mapped[float | None] = mapped_column(Double)
    # Bumped by every outcomes request: orders writes for replicas pulling deltas.
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    max_step: Mapped[int | None] = mapped_column(BigInteger)
    token_hash: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Outcome(Base):
    """Append-only log of every accepted outcome: the audit trail behind problem_stats."""

    __tablename__ = "outcomes"
    __table_args__ = (Index("ix_outcomes_run_problem", "run_id", "problem_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    problem_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("problems.id", ondelete="CASCADE")
    )
    attempts: Mapped[int] = mapped_column(Integer)
    successes: Mapped[int] = mapped_column(Integer)
    step: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(BigInteger)


class ProblemStats(Base):
    """Per (run, problem) aggregate, maintained by increments in the ingest transaction."""

    __tablename__ = "problem_stats"
    __table_args__ = (Index("ix_problem_stats_run_version", "run_id", "version"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    problem_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("problems.id", ondelete="CASCADE"), primary_key=True
    )
    # Effective (half-life discounted) counts; equal to the totals without decay.
    attempts: Mapped[float] = mapped_column(Double)
    successes: Mapped[float] = mapped_column(Double)
    total_attempts: Mapped[int] = mapped_column(BigInteger)
    total_successes: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(BigInteger)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RunHistory(Base):
    """Per-run difficulty snapshots over training steps, one row per step.

    Bounded per run (settings.history_max_points): older points are thinned as new ones come.
    """

    __tablename__ = "run_history"
    __table_args__ = (UniqueConstraint("run_id", "step"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(BigInteger)
    unseen: Mapped[int] = mapped_column(BigInteger)
    intractable: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[int] = mapped_column(BigInteger)
    mastered: Mapped[int] = mapped_column(BigInteger)
    mean_pass_rate: Mapped[float | None] = mapped_column(Double)
    mean_weight: Mapped[float] = mapped_column(Double)
    effective_problems: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
