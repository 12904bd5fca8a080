"""Request bodies of the v1 API (the contract clients rely on), and the batch's response.

The other response bodies are what the domain returns (service/domain/views.py and
reports.py): the routes send those objects as they are. The batch body is built as a plain
dict on the hot path (domain/curriculum.batch_items) and only documented here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from service.curriculum.estimators import EstimatorConfig, EstimatorKind, Window
from service.curriculum.kernels import KernelConfig

# Dataset and run names: what people type (`Qwen2.5-7B-distill`), case-sensitive, and safe as a
# URL path segment. The one definition: the request bodies, the query and path parameters
# that take a name, the run-name glob and the 422's message all use these.
NAME_MAX = 128
NAME_CHARS = "A-Za-z0-9._-"
NAME_BODY = f"[A-Za-z0-9][{NAME_CHARS}]{{0,{NAME_MAX - 1}}}"  # a name, without anchors
NAME_PATTERN = f"^{NAME_BODY}$"
NAME_RULE = (
    f"a name is 1 to {NAME_MAX} characters: letters, digits, '.', '_' or '-', starting with a "
    f"letter or digit (case-sensitive; pattern {NAME_PATTERN})"
)

# A run-name glob: the name alphabet plus `*` (any run of characters), e.g. `paced-s*`.
NAME_GLOB = f"^[*{NAME_CHARS}]{{1,{NAME_MAX}}}$"


def name_list_pattern(at_least: int, at_most: int) -> str:
    """`at_least` to `at_most` names, comma-separated, as the server reads such a list
    (domain/overview.parse_run_list: spaces around a name and empty parts are skipped)."""
    more = f"{{{at_least - 1},{at_most - 1}}}"
    return rf"^[\s,]*{NAME_BODY}(\s*,[\s,]*{NAME_BODY}){more}[\s,]*$"


def states_the_rule(rule: str) -> WrapValidator:
    """A string that breaks its pattern or length gets `rule` as its message (pydantic's own
    message quotes the bare regex); the error's type stays pydantic's."""

    def wrapped(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            if error["type"] in ("string_pattern_mismatch", "string_too_long", "string_too_short"):
                raise PydanticCustomError(error["type"], rule) from None
            raise

    return WrapValidator(wrapped)


Name = Annotated[
    str,
    Field(pattern=NAME_PATTERN, min_length=1, max_length=NAME_MAX),
    states_the_rule(NAME_RULE),
]


def name_list_rule(at_least: int, at_most: int) -> str:
    """A comma-separated run-name list's rule, worded as domain/overview.parse_run_list words
    a wrong count."""
    return f"name {at_least} to {at_most} runs, comma-separated; {NAME_RULE}"


PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]
# Page sizes (weights, rollout queue). Items per request and batch sizes are settings
# (PACED_MAX_ITEMS_PER_REQUEST, PACED_MAX_BATCH_SIZE): enforced by service/api/limits.py and
# written into the OpenAPI document there, so raising them works.
MAX_PAGE = 10_000
INT63 = 2**63 - 1
LATEST_WITH_HALF_LIFE = "window 'latest' keeps one round only; leave half_life_steps null"


def _integral(value: Any) -> Any:
    """JSON Schema's integer includes 1.0 (a number with no fractional part): accept it as 1.
    Strings ("5") and fractions (1.5) are still refused by the strict int check after this."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# Put last in a request integer's Annotated[int, Field(...), INTEGRAL] (after Field, or the
# bounds vanish from the JSON schema): strict, except that an integral float is an integer.
INTEGRAL = BeforeValidator(_integral)


class Request(BaseModel):
    # Strict: "5" is not an int and unknown fields are typos, both answered with a 422.
    model_config = ConfigDict(strict=True, extra="forbid")


class DatasetCreate(Request):
    name: Name
    description: Annotated[str, Field(max_length=10_000)] | None = None


class ProblemIn(Request):
    id: Annotated[str, Field(min_length=1, max_length=256)]
    prompt: str
    answer: str | None = None
    metadata: dict[str, Any] | None = None


class ProblemsUpsert(Request):
    problems: list[ProblemIn]


class Kernel(Request):
    alpha: PositiveFinite = 1.0
    beta: PositiveFinite = 1.0

    def config(self) -> KernelConfig:
        """The core's settings object, carried as is to the sampler (Run.kernel)."""
        return KernelConfig(self.alpha, self.beta)


def default_window(half_life_steps: float | None) -> Window:
    """The window of an estimator that names none: 'latest' (pass rates of the current
    student, docs/architecture.md "Pass rates that track the student"), or 'all' with a
    half-life, the only window a half-life applies to. (Until 0.2.0 it was 'all' whatever
    the half-life: CHANGELOG.md.)"""
    return "all" if half_life_steps is not None else "latest"


class EstimatorSpec(Request):
    # JSON Schema states the one rule across these fields: window 'latest' takes no half-life.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"window": {"const": "latest"}}, "required": ["window"]},
            "then": {"properties": {"half_life_steps": {"type": "null"}}},
        }
    )

    kind: EstimatorKind = "empirical"
    prior_alpha: PositiveFinite = 1.0
    prior_beta: PositiveFinite = 1.0
    half_life_steps: PositiveFinite | None = None
    window: Window | None = Field(
        None,
        description=(
            "Which estimation rounds a problem's pass rate covers: 'latest' (only the outcomes "
            "at the problem's newest step: a fresh K-rollout re-estimate replaces the old one) "
            "or 'all' (every outcome, optionally decayed by half_life_steps). Left out or null: "
            "'latest', or 'all' when half_life_steps is set. 'latest' with a half-life is a 422."
        ),
    )

    @field_validator("window")
    @classmethod
    def _latest_has_no_half_life(cls, window: str | None, info: ValidationInfo) -> str | None:
        if window == "latest" and info.data.get("half_life_steps") is not None:
            raise ValueError(LATEST_WITH_HALF_LIFE)
        return window

    def config(self) -> EstimatorConfig:
        """The core's settings object, carried as is to the sampler (Run.estimator)."""
        window = self.window or default_window(self.half_life_steps)
        return EstimatorConfig(
            self.kind, self.prior_alpha, self.prior_beta, self.half_life_steps, window
        )


class RunCreate(Request):
    name: Name
    dataset: Name
    kernel: Kernel = Field(default_factory=Kernel)
    estimator: EstimatorSpec = Field(default_factory=EstimatorSpec)


STEP_DESCRIPTION = (
    "The training step the rollouts describe the student at. Left out or null: the run's "
    "current step, the largest step its outcomes have carried (0 before any); the one "
    "definition is docs/architecture.md, 'An outcome without a step'."
)


class OutcomeIn(TypedDict):
    """One outcome. A TypedDict, not a model: validating 10,000 of these is 5x cheaper and
    the route gets plain dicts. successes <= attempts, and at least one attempt graded or
    errored, are checked over the whole list by successes_within_attempts() (a per-item
    Python validator cost more than the rest)."""

    __pydantic_config__ = ConfigDict(strict=True, extra="forbid")  # type: ignore[misc]
    problem_id: Annotated[str, Field(min_length=1, max_length=256)]
    attempts: Annotated[
        int,
        Field(ge=0, le=1_000_000, description="Graded attempts (errored ones not included)."),
        INTEGRAL,
    ]
    successes: Annotated[int, Field(ge=0, le=1_000_000), INTEGRAL]
    errored: NotRequired[
        Annotated[
            int,
            Field(
                ge=0,
                le=1_000_000,
                description="Attempts of this group that errored or timed out, besides "
                "`attempts`: stored and shown, never counted in the pass rate. 0 if left out.",
            ),
            INTEGRAL,
        ]
    ]
    step: NotRequired[
        Annotated[
            Annotated[int, Field(ge=0, le=INT63), INTEGRAL] | None,
            Field(description=STEP_DESCRIPTION),
        ]
    ]


NOTHING_ATTEMPTED = "Value error, an outcome needs attempts >= 1 or errored >= 1"


def successes_within_attempts(outcomes: list[OutcomeIn]) -> list[dict[str, Any]]:
    """Validation errors (FastAPI's shape, located at the item) where successes > attempts,
    or where nothing was attempted (0 graded and 0 errored)."""
    return [
        {
            "type": "value_error",
            "loc": ("body", "outcomes", i),
            "msg": (
                f"Value error, successes ({o['successes']}) must be <= attempts ({o['attempts']})"
                if o["successes"] > o["attempts"]
                else NOTHING_ATTEMPTED
            ),
            "input": o,
        }
        for i, o in enumerate(outcomes)
        if o["successes"] > o["attempts"] or (o["attempts"] == 0 and not o.get("errored"))
    ]


class OutcomesPost(Request):
    outcomes: Annotated[list[OutcomeIn], Field(min_length=1)]


# A weights page's cursor is the last problem's internal id (service/domain/curriculum.py):
# any digit string is a position, so the schema's pattern is the whole rule.
CURSOR_PATTERN = r"^[0-9]{0,18}$"


class WeightsQuery(Request):
    problem_ids: list[str] | None = None
    cursor: Annotated[str, Field(pattern=CURSOR_PATTERN)] | None = Field(
        default=None,
        description="The previous page's next_cursor, unchanged; null or empty: the first page.",
    )
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE), INTEGRAL] = 1000


MAX_LEASE_S = 7 * 86_400.0
Claimer = Annotated[str, Field(min_length=1, max_length=200)]
LeaseSeconds = Annotated[float, Field(gt=0, le=MAX_LEASE_S, allow_inf_nan=False)]


# rollout-queue's lease_s and claimer are two query parameters: JSON Schema cannot tie them.
LEASE_NEEDS_CLAIMER = [
    {"type": "value_error", "loc": ("query", "lease_s"), "msg": "lease_s needs a claimer"}
]


class Lease(Request):
    """Lease the drawn problems to `claimer`: draws with skip_leased and other claimers of the
    rollout queue pass them over until their outcomes arrive or `ttl_s` seconds pass."""

    claimer: Claimer
    ttl_s: LeaseSeconds = 600.0


class BatchRequest(Request):
    size: Annotated[int, Field(ge=1), INTEGRAL]
    seed: Annotated[int, Field(ge=-(2**63), le=2**64 - 1), INTEGRAL] | None = None
    mode: Literal["proportional", "uniform", "thompson"] = Field(
        default="proportional",
        description="proportional: drawn without replacement with probability ∝ weight, "
        "loss_weight 1. uniform: uniformly among problems with an estimate, loss_weight = "
        "weight / mean weight. thompson: as proportional, but each problem's weight is w(p) at "
        "one draw of p from its posterior Beta(prior_alpha + k, prior_beta + n - k) instead "
        "of the posterior mean, so uncertain problems (unseen, 0 or K of K by chance) are drawn "
        "now and then; one draw per (seed, draw_key, the run's version): the same request on "
        "the same run state gets the same batch. An O(problems) pass per batch.",
        examples=["proportional", "thompson"],
    )
    # The fields below are optional; without them the batch is what it always was.
    fill: Literal["none", "unseen", "unseen_then_uniform"] = Field(
        default="none",
        description="Top the batch up to `size` when the weighted draw falls short: with "
        "unseen problems, then (unseen_then_uniform) with any. Filled items have loss_weight 0.",
    )
    draw_key: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="Pin the batch: every request with this key gets the items the first one "
        "drew (N ranks asking for step t get one batch). Another body with the key is a 409.",
    )
    lease: Lease | None = None
    skip_leased: bool = Field(
        default=False,
        description="Skip problems under a rollout lease (drawn or claimed, not yet graded).",
    )
    epsilon: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        default=0.0,
        description="Exploration share: round(epsilon * size) items are drawn uniformly, "
        "without replacement, from the problems the weights leave out (weight 0, or no "
        "evidence at all: mastered, intractable, unseen), at most as many as there are; the "
        "rest as `mode` says. Explored items have source 'explored' and loss_weight 0 (they "
        "earn fresh outcomes, not gradient weight). Drawn from (seed, draw_key, the run's "
        "version), as mode thompson. 0: no exploration (the batch is what it always was).",
        examples=[0.0, 0.05],
    )


class BatchItem(BaseModel):
    problem_id: str
    prompt: str
    answer: str | None
    pass_rate: float | None
    weight: float
    loss_weight: float
    source: Literal["drawn", "fill_unseen", "fill_uniform", "explored"] | None = Field(
        default=None, description="Only when the request asked for a fill or an epsilon share."
    )


class BatchSources(BaseModel):
    drawn: int
    fill_unseen: int
    fill_uniform: int
    explored: int = Field(
        default=0, description="Only when the request asked for an epsilon share."
    )


class Batch(BaseModel):
    items: list[BatchItem]
    available: int
    sources: BatchSources | None = Field(
        default=None,
        description="How many items came from each source; only with a fill or an epsilon share.",
    )


class BatchColumnValues(BaseModel):
    problem_id: list[str]
    prompt: list[str]
    answer: list[str | None]
    pass_rate: list[float | None]
    weight: list[float]
    loss_weight: list[float]
    source: list[Literal["drawn", "fill_unseen", "fill_uniform", "explored"]] | None = Field(
        default=None, description="Only when the request asked for a fill or an epsilon share."
    )


class BatchColumns(BaseModel):
    """The batch in columns (item i is the i-th entry of every list), sent instead of Batch
    only when the request's Accept names application/vnd.paced.batch-columns+json."""

    columns: BatchColumnValues
    available: int
    sources: BatchSources | None = None


class Health(BaseModel):
    status: Literal["ok"]
