"""What the use cases return: the v1 API's response bodies, as typed, immutable objects.

The domain fills these in and the routes send them as they are: FastAPI serialises an
instance of a route's response model without validating it again, and generates the OpenAPI
document from these very classes, so the contract and the domain's results cannot drift.
Request bodies are the API's (service/api/schemas.py). The batch body is the exception: the
hot path builds it as a plain dict (domain/curriculum.batch_items), documented by
schemas.Batch.

Construct with keywords (validated, so an int given for a float field is sent as a float,
as when FastAPI validated dicts), never with model_construct.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from service.curriculum.estimators import EstimatorKind, Window, Zone
from service.curriculum.summaries import QueueReason


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


V = TypeVar("V", bound=View)


@dataclass(frozen=True)
class Obtained(Generic[V]):
    """What a get-or-create use case returns: the resource's body, and whether this request
    created it (the route answers 201) or found it with the same settings (200)."""

    view: V
    created: bool


# ---- datasets and problems ----------------------------------------------------------------


class DatasetOut(View):
    name: str
    description: str | None
    problem_count: int
    created_at: datetime


class DatasetList(View):
    items: list[DatasetOut]


class ProblemsUpserted(View):
    inserted: int
    updated: int


class ProblemOut(View):
    id: str
    prompt: str
    answer: str | None
    metadata: dict[str, Any] | None


# ---- runs -----------------------------------------------------------------------------------


class KernelOut(View):
    """The run's w(p) = p^alpha (1-p)^beta, as its creation set it."""

    alpha: float
    beta: float


class EstimatorOut(View):
    """How the run estimates pass rates from counts, as its creation set it (EstimatorSpec)."""

    kind: EstimatorKind
    prior_alpha: float
    prior_beta: float
    half_life_steps: float | None
    window: Window


class RunOut(View):
    name: str
    dataset: str
    kernel: KernelOut
    estimator: EstimatorOut
    step: int | None
    created_at: datetime
    token: str | None = Field(
        default=None,
        description="Run token, returned once, by the request that created the run, when auth "
        "is on; null everywhere else (a create that finds the run answers 200 without it).",
    )


class RunList(View):
    items: list[RunOut]


class OutcomesAccepted(View):
    accepted: int


# ---- per-problem state ----------------------------------------------------------------------


PRIOR_ATTEMPTS = (
    "Pseudo-attempts of the problem's prior (POST /v1/runs/{run}/priors): added to its "
    "counts as Beta pseudo-counts wherever its pass rate, weight and zone are estimated; 0 "
    "without a prior. attempts and successes are the outcomes' own."
)
PRIOR_SUCCESSES = "Pseudo-successes of the problem's prior (pass rate x prior_attempts)."


class ProblemStatsOut(View):
    problem_id: str
    attempts: int
    successes: int
    pass_rate: float | None
    weight: float
    zone: Zone
    last_step: int | None
    # Attempts that errored or timed out: kept, shown, never in attempts or the pass rate.
    errored: int = 0
    prior_attempts: float = Field(default=0.0, description=PRIOR_ATTEMPTS)
    prior_successes: float = Field(default=0.0, description=PRIOR_SUCCESSES)


class WeightItem(View):
    problem_id: str
    attempts: int
    successes: int
    pass_rate: float | None
    weight: float
    prior_attempts: float = Field(default=0.0, description=PRIOR_ATTEMPTS)
    prior_successes: float = Field(default=0.0, description=PRIOR_SUCCESSES)


class WeightsPage(View):
    items: list[WeightItem]
    next_cursor: str | None


class PriorsSet(View):
    """What a priors upload did."""

    updated: int = Field(description="problems whose prior this request set")
    problems_with_prior: int = Field(description="problems of the run with a prior, after it")


# ---- rollout queue and difficulty -----------------------------------------------------------


class QueueItem(View):
    problem_id: str
    prompt: str
    answer: str | None
    reason: QueueReason


class RolloutQueue(View):
    items: list[QueueItem]


class Zones(View):
    unseen: int
    intractable: int
    frontier: int
    mastered: int


class Histogram(View):
    edges: list[float]
    counts: list[int]


class Difficulty(View):
    problems: int
    # The run's errored or timed-out attempts, all problems together (none counted in p).
    errored_attempts: int = 0
    zones: Zones
    histogram: Histogram
    mean_weight: float
    effective_problems: float
