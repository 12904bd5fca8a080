"""Typed request and response bodies of the PACED REST API (v1).

Every model accepts extra fields, so a newer service that adds fields does not break an older
client. Response enums (zone, reason) are plain strings for the same reason; request enums are
Literals so a typo fails before anything is sent.

Counts (`attempts`, `successes`) are `int | float`: the service reports raw integer totals
today; a float (half-life-discounted count) would be kept as sent rather than rejected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._batch_format import BatchItem


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


# The values of the response enums, as this client knows them (the fields stay plain str, see
# above). tests/client/test_models_match_openapi.py holds them equal to the service's.
ZONES = ("unseen", "intractable", "frontier", "mastered")  # ProblemStats.zone, Zones' fields
ROLLOUT_REASONS = ("unseen", "stale", "uncertain")  # RolloutItem.reason
# BatchItem.source, Batch.sources ("explored": only in batches with an epsilon share)
BATCH_SOURCES = ("drawn", "fill_unseen", "fill_uniform", "explored")


# ---- service ---------------------------------------------------------------------------------


class Health(_Model):
    status: str


# ---- datasets and problems -------------------------------------------------------------------


class Dataset(_Model):
    name: str
    description: str | None = None
    problem_count: int = 0
    created_at: datetime | None = None


class Problem(_Model):
    """A problem as uploaded (and as returned by get_problem)."""

    id: str
    prompt: str
    answer: str | None = None
    metadata: dict[str, Any] | None = None


class UpsertResult(_Model):
    inserted: int
    updated: int


# ---- runs -------------------------------------------------------------------------------------


class Kernel(_Model):
    """w(p) = p^alpha (1-p)^beta; the paper's default is alpha = beta = 1."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    alpha: float = Field(1.0, gt=0)
    beta: float = Field(1.0, gt=0)


class Estimator(_Model):
    """How p is estimated: k/n, a Beta posterior's mean weight, or predicted (a drift model)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    kind: Literal["empirical", "posterior", "predicted"] = "empirical"
    prior_alpha: float = Field(1.0, gt=0)
    prior_beta: float = Field(1.0, gt=0)
    half_life_steps: float | None = Field(None, gt=0)
    # "latest": only each problem's newest estimation round counts (tracks the student);
    # None: the service's default ("latest", or "all" when half_life_steps is set).
    window: Literal["all", "latest"] | None = None


class Run(_Model):
    name: str
    dataset: str
    kernel: Kernel = Field(default_factory=Kernel)
    estimator: Estimator = Field(default_factory=Estimator)
    step: int | None = None
    created_at: datetime | None = None
    # Returned once, by create_run, when the server has an admin token configured.
    token: str | None = None


# ---- outcomes and per-problem state ------------------------------------------------------------


class Outcome(_Model):
    """K rollouts of one problem graded by the verifier: `successes` of `attempts` passed;
    `errored` more errored or timed out (kept apart, never counted in the pass rate)."""

    problem_id: str
    attempts: int = Field(ge=0)
    successes: int = Field(ge=0)
    step: int | None = Field(None, ge=0)
    errored: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _successes_within_attempts(self) -> Outcome:
        if self.successes > self.attempts:
            raise ValueError(f"successes ({self.successes}) > attempts ({self.attempts})")
        if self.attempts == 0 and self.errored == 0:
            raise ValueError("an outcome needs attempts >= 1 or errored >= 1")
        return self


class OutcomesAccepted(_Model):
    accepted: int


class ProblemStats(_Model):
    problem_id: str
    attempts: int | float
    successes: int | float
    pass_rate: float | None = None
    weight: float
    zone: str  # one of ZONES
    last_step: int | None = None
    errored: int = 0  # errored or timed-out attempts, not in attempts or the pass rate
    prior_attempts: float = 0.0  # the prior's pseudo-counts (set_priors), added in estimates
    prior_successes: float = 0.0


class WeightItem(_Model):
    problem_id: str
    attempts: int | float
    successes: int | float
    pass_rate: float | None = None
    weight: float
    prior_attempts: float = 0.0  # the prior's pseudo-counts (set_priors), added in estimates
    prior_successes: float = 0.0


class WeightsPage(_Model):
    items: list[WeightItem]
    next_cursor: str | None = None


# ---- batches, rollout queue, difficulty --------------------------------------------------------


class Lease(_Model):
    """Claim drawn problems for `claimer` until graded or `ttl_s` seconds pass."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    claimer: str = Field(min_length=1, max_length=200)
    ttl_s: float = Field(600.0, gt=0)


class Batch(_Model):
    # BatchItem (_batch_format.py) is a slotted class, not a model: a batch is built without
    # per-item pydantic cost. Its loss_weight multiplies the problem's distillation loss.
    items: list[BatchItem]
    available: int
    # Only with a fill: how many items came from each source.
    sources: dict[str, int] | None = None


class RolloutItem(_Model):
    problem_id: str
    prompt: str
    answer: str | None = None
    reason: str  # one of ROLLOUT_REASONS


class RolloutQueue(_Model):
    items: list[RolloutItem]


class Zones(_Model):
    unseen: int
    intractable: int
    frontier: int
    mastered: int


class Histogram(_Model):
    edges: list[float]
    counts: list[int]


class Difficulty(_Model):
    problems: int
    errored_attempts: int = 0
    zones: Zones
    histogram: Histogram
    mean_weight: float | None = None
    effective_problems: float


class History(_Model):
    """Shape not fixed by the v1 contract yet: the raw items are kept as dicts."""

    items: list[dict[str, Any]] = Field(default_factory=list)


# ---- across runs: overview, comparison, one problem's history ----------------------------------


class HistoryPoint(_Model):
    """A run's difficulty snapshot at one step (zone counts, mean weight, effective problems)."""

    step: int
    zones: Zones
    mean_pass_rate: float | None = None
    mean_weight: float
    effective_problems: float
    created_at: datetime | None = None


class RunSummary(_Model):
    run: Run
    latest: HistoryPoint | None = None  # None before the run's first outcomes
    rollouts: int | None = None  # graded attempts (asked for with rollouts=True)
    errored_rollouts: int | None = None


class ComparedRun(_Model):
    run: Run
    difficulty: Difficulty
    mean_pass_rate: float | None = None
    history: list[HistoryPoint] = Field(default_factory=list)


class ProblemSummary(_Model):
    """One problem of a run as the overview lists it (prompt cut to 2,000 characters)."""

    problem_id: str
    attempts: float
    successes: float
    pass_rate: float
    weight: float
    last_step: int
    prompt: str
    prompt_truncated: bool = False
    answer: str | None = None


class Overview(_Model):
    """A run's dashboard in one answer: settings, difficulty, the top frontier problems and
    the recently mastered ones."""

    run: Run
    difficulty: Difficulty
    mean_pass_rate: float | None = None
    top_frontier: list[ProblemSummary] = Field(default_factory=list)
    recently_mastered: list[ProblemSummary] = Field(default_factory=list)


class Difference(_Model):
    """A problem two runs disagree on: pass rates (k/n) in the pair's first and second run."""

    problem_id: str
    prompt: str  # the first 2,000 characters (prompt_truncated says when there were more)
    prompt_truncated: bool = False
    answer: str | None = None
    pass_rates: list[float]
    attempts: list[float]
    difference: float  # first minus second


class Comparison(_Model):
    dataset: str
    runs: list[ComparedRun]
    pair: list[str]
    differences: list[Difference]


class StepOutcomes(_Model):
    step: int | None = None  # None: outcomes posted without a step
    attempts: int
    successes: int
    pass_rate: float
    outcomes: int
    last_accepted_at: datetime | None = None


class ProblemHistory(_Model):
    problem: Problem
    stats: ProblemStats
    steps: list[StepOutcomes]
    complete: bool = True  # False: the run's log was too long to scan whole
