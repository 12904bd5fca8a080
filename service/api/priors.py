"""/v1/runs/{run}/priors: per-problem priors (an uploaded profile, or another run's estimates).

What a prior is and how the estimators use it: service/curriculum/priors.py. The bodies are
here rather than in schemas.py because only these two routes take them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import ConfigDict, Field
from typing_extensions import TypedDict

from service.api.deps import get_ctx
from service.api.limits import check_items
from service.api.responses import AUTH, BODY, DATABASE, errors
from service.api.schemas import Name, PositiveFinite, Request
from service.api.security import require_admin, require_run_access
from service.context import AppContext
from service.domain import priors, views

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=errors(*AUTH, *DATABASE))
RUN = [Depends(require_run_access)]
ADMIN = [Depends(require_admin)]  # copying reads another run: not for one run's token
MAX_PSEUDO_ATTEMPTS = 1e9
DEFAULT_COPY_WEIGHT = 8.0  # one K = 8 round: a fresh round of this student weighs as much


class PriorIn(TypedDict):
    """One problem's prior. A TypedDict, as OutcomeIn: a profile of 10,000 problems is
    validated without a model per item."""

    __pydantic_config__ = ConfigDict(strict=True, extra="forbid")  # type: ignore[misc]
    problem_id: Annotated[str, Field(min_length=1, max_length=256)]
    pass_rate: Annotated[
        float,
        Field(ge=0, le=1, allow_inf_nan=False, description="e.g. a reference model's pass rate"),
    ]
    pseudo_attempts: Annotated[
        float,
        Field(
            gt=0,
            le=MAX_PSEUDO_ATTEMPTS,
            allow_inf_nan=False,
            description="What the pass rate is worth, in attempts of this run: its pseudo-counts "
            "are (pseudo_attempts, pseudo_attempts x pass_rate). A fresh round of K rollouts "
            "outweighs a prior of fewer than K.",
        ),
    ]


class PriorsUpload(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"problem_id": "q1", "pass_rate": 0.25, "pseudo_attempts": 4},
                        {"problem_id": "q2", "pass_rate": 0.0, "pseudo_attempts": 16},
                    ],
                    "max_pseudo_attempts": 8,
                },
                {"items": [], "replace": True},
            ]
        }
    )

    items: list[PriorIn] = Field(
        description="Per problem a pass rate and its weight in pseudo-attempts; an id twice, or "
        "one the run's dataset does not have, is a 422 and nothing is applied."
    )
    max_pseudo_attempts: PositiveFinite | None = Field(
        default=None, description="Cap every item's pseudo_attempts at this (n0); null: no cap."
    )
    replace: bool = Field(
        default=False,
        description="true: problems not in items lose their prior (items [] clears them all).",
    )


class PriorsCopy(Request):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"from_run": "qwen-7b-base", "max_pseudo_attempts": 8}]}
    )

    from_run: Name = Field(description="A run on the same dataset (not this one).")
    max_pseudo_attempts: PositiveFinite = Field(
        default=DEFAULT_COPY_WEIGHT,
        description="n0: each problem gets the other run's pass rate (its counts plus its own "
        "prior, as its estimator reads them) at min(its evidence, n0) pseudo-attempts.",
    )
    replace: bool = Field(default=False, description="true: the run's other priors go.")


@router.post(
    "/{run}/priors",
    dependencies=RUN,
    responses=errors(*BODY, 404),
)
def set_priors(run: str, body: PriorsUpload, ctx: AppContext = Depends(get_ctx)) -> views.PriorsSet:
    """Per-problem priors from a profile (CSV, JSONL or parquet through the client and
    `paced priors`): added to each problem's counts as Beta pseudo-counts by every estimator
    (pass rates, weights, zones, batches, the rollout queue); the weights and problem views
    show them as prior_attempts / prior_successes. Stored with the run: restarts and replicas
    keep them. Setting a problem's prior again replaces it."""
    check_items(ctx.settings, "items", len(body.items))
    return ctx.on_run(
        run, priors.upload, body.items, body.max_pseudo_attempts, body.replace, ctx.priors_committed
    )


@router.post(
    "/{run}/priors/copy",
    dependencies=ADMIN,
    # 404: either run; 409: the other run is this one or is on another dataset
    responses=errors(*BODY, 404, 409),
)
def copy_priors(run: str, body: PriorsCopy, ctx: AppContext = Depends(get_ctx)) -> views.PriorsSet:
    """Start the run from another run's current estimates, down-weighted to at most
    max_pseudo_attempts per problem (that run's student is not this one). Needs the admin
    token when auth is on: it reads the other run."""
    return ctx.on_run(
        run,
        priors.copy,
        body.from_run,
        body.max_pseudo_attempts,
        body.replace,
        ctx.registry,
        ctx.priors_committed,
    )
