"""Database schema (SQLAlchemy 2). Alembic migrations mirror this file; a test checks drift."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from service.curriculum.estimators import EstimatorConfig, EstimatorKind, Window
from service.curriculum.kernels import KernelConfig

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; BIGINT elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Column kinds several tables share.
Count = Annotated[int, mapped_column(BigInteger)]
Real = Annotated[float, mapped_column(Double)]
Packed = Annotated[bytes, mapped_column(LargeBinary)]  # a little-endian array
RunId = Annotated[int, mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))]
# Dataset and run names (service/api/schemas.NAME_PATTERN: up to 128 characters). SQLite keeps
# the VARCHAR(64) its tables were created with: it does not enforce a declared length (128
# characters fit), and changing one means rebuilding the table, which with foreign keys on
# would cascade-delete every run's data (migration 0010).
NameColumn = String(128).with_variant(String(64), "sqlite")


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


class PerRunProblem:
    """The key of the per (run, problem) tables: both ids, each row gone with its run or its
    problem (a mixin, as FirstAnswer). sort_order keeps the ids the tables' first columns, as
    the migrations made them (a mixin's columns would otherwise come last)."""

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, sort_order=-2
    )
    problem_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("problems.id", ondelete="CASCADE"), primary_key=True, sort_order=-1
    )


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(NameColumn, unique=True)
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
    name: Mapped[str] = mapped_column(NameColumn, unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    kernel_alpha: Mapped[float] = mapped_column(Double)
    kernel_beta: Mapped[float] = mapped_column(Double)
    estimator_kind: Mapped[EstimatorKind] = mapped_column(String(16))
    prior_alpha: Mapped[float] = mapped_column(Double)
    prior_beta: Mapped[float] = mapped_column(Double)
    half_life_steps: Mapped[float | None] = mapped_column(Double)
    # "all" or "latest": which estimation rounds the counts cover (curriculum.estimators).
    # Every insert writes it (the API's default is "latest": api/schemas.default_window); the
    # server default is what runs from before migration 0009 got.
    estimator_window: Mapped[Window] = mapped_column(
        String(16), default="all", server_default="all"
    )

    # Bumped by every outcomes request: orders writes for replicas pulling deltas.
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    max_step: Mapped[int | None] = mapped_column(BigInteger)
    # Bumped by every write of the run's priors (problem_priors): replicas reload them.
    priors_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    token_hash: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # The same columns as the core's own settings objects: what the request asked for, carried
    # unchanged to the estimator and the sampler (and back out in the run's view). Properties,
    # not SQLAlchemy composites: those would read the core dataclasses' annotations.
    @property
    def kernel(self) -> KernelConfig:
        return KernelConfig(self.kernel_alpha, self.kernel_beta)

    @kernel.setter
    def kernel(self, kernel: KernelConfig) -> None:
        self.kernel_alpha, self.kernel_beta = kernel.alpha, kernel.beta

    @property
    def estimator(self) -> EstimatorConfig:
        return EstimatorConfig(
            self.estimator_kind,
            self.prior_alpha,
            self.prior_beta,
            self.half_life_steps,
            self.estimator_window,
        )

    @estimator.setter
    def estimator(self, estimator: EstimatorConfig) -> None:
        self.estimator_kind, self.estimator_window = estimator.kind, estimator.window
        self.prior_alpha, self.prior_beta = estimator.prior_alpha, estimator.prior_beta
        self.half_life_steps = estimator.half_life_steps


class OutcomeBatch(Base):
    """The outcome log: every accepted outcomes request as one row, the audit trail behind
    problem_stats (store/outcome_log.py packs and unpacks it).

    Columns are packed little-endian arrays, one entry per outcome in request order:
    problem_ids int64 (problems.id), attempts int32, successes int32, steps int64 (-1 where
    the client sent no step). One row per request instead of one per outcome: a per-outcome
    row with its foreign-key checks and index entries cost more than all the rest of an
    ingest (190 of ~500 ms per 10,000 outcomes on PostgreSQL). The problem ids were checked
    against the dataset in the same transaction.
    """

    __tablename__ = "outcome_batches"
    __table_args__ = (Index("ix_outcome_batches_run_version", "run_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[RunId]
    version: Mapped[Count]
    count: Mapped[int] = mapped_column(Integer)
    problem_ids: Mapped[Packed]
    attempts: Mapped[Packed]
    successes: Mapped[Packed]
    steps: Mapped[Packed]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProblemStats(PerRunProblem, Base):
    """Per (run, problem) aggregate, maintained by increments in the ingest transaction.

    No write version here: replicas find what changed through outcome_batches (indexed by
    version) instead. An indexed version column made every update move an index entry,
    which cost PostgreSQL ingest 30%. On PostgreSQL pages are left 30% free (fillfactor)
    so that an update can put the new row version on the same page without touching the
    primary-key index (a HOT update): every ingest updates thousands of rows."""

    __tablename__ = "problem_stats"
    __table_args__ = {"postgresql_with": {"fillfactor": 70}}

    # Effective (half-life discounted) counts; equal to the totals without decay.
    attempts: Mapped[float] = mapped_column(Double)
    successes: Mapped[float] = mapped_column(Double)
    total_attempts: Mapped[int] = mapped_column(BigInteger)
    total_successes: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)


class ErroredAttempts(PerRunProblem, Base):
    """Per (run, problem): attempts whose rollout errored or timed out, never graded. They are
    kept apart from problem_stats: an error says nothing about whether the student can solve
    the problem, so it must not move p (docs/architecture.md, "Errored attempts"). Written
    only by requests that carry any, so ingest without errors costs nothing more."""

    __tablename__ = "errored_attempts"

    errored: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)


class FirstAnswer:
    """A request keyed by (run, the caller's key) whose first answer is kept: a retry (or
    another rank) with the key gets it again; the key with another body is a 409."""

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(FirstAnswer, Base):
    """An outcomes post under an Idempotency-Key, with the response it got."""

    __tablename__ = "idempotency_keys"

    response: Mapped[dict[str, Any]] = mapped_column(JSON)


class RunHistory(Base):
    """Per-run difficulty snapshots over training steps, one row per step.

    Bounded per run (settings.history_max_points): older points are thinned as new ones come.
    """

    __tablename__ = "run_history"
    __table_args__ = (UniqueConstraint("run_id", "step"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[RunId]
    step: Mapped[Count]
    unseen: Mapped[Count]
    intractable: Mapped[Count]
    frontier: Mapped[Count]
    mastered: Mapped[Count]
    mean_pass_rate: Mapped[Real | None]
    mean_weight: Mapped[Real]
    effective_problems: Mapped[Real]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RolloutLease(PerRunProblem, Base):
    """A claim on a problem's rollouts: while it holds, draws that skip leased problems (and
    other claimers of the rollout queue) pass the problem over.

    A lease ends when it expires or when the problem is graded after it was taken: then
    problem_stats.total_attempts exceeds ``attempts_at_claim``. Checking that at read time
    keeps the outcome ingest path free of lease bookkeeping. Times are unix seconds of the
    service's clock (replicas need synchronised clocks, as for any TTL)."""

    __tablename__ = "rollout_leases"
    __table_args__ = (Index("ix_rollout_leases_run_expires", "run_id", "expires_at"),)

    claimer: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Double)
    attempts_at_claim: Mapped[int] = mapped_column(BigInteger)


class PinnedDraw(FirstAnswer, Base):
    """A batch drawn under a caller's draw key: every request with that key gets these items
    (N ranks asking for step t get one batch whatever was posted in between).

    ``draw`` holds the drawn problems (problems.id) with the weights they had when drawn;
    texts are read again when the draw is served."""

    __tablename__ = "pinned_draws"

    draw: Mapped[dict[str, Any]] = mapped_column(JSON)


# Tables kept in their own modules, registered on Base by importing them here.
from service.prior_models import ProblemPrior  # noqa: E402,F401
