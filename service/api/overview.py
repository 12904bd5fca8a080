"""Across runs: /v1/runs-summary, /v1/compare and /v1/runs/{run}/problem-history/{id}.

What the runs overview, the compare page and the problem page read; notebooks get the same
data through the client (runs_summary, compare, problem_history).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from service.api import schemas
from service.api.deps import get_ctx
from service.api.history import HistoryPoint
from service.api.responses import AUTH, DATABASE, errors
from service.api.security import require_admin, require_run_access
from service.context import AppContext
from service.domain import overview, runs

# A run-name glob: the name alphabet plus `*` (any run of characters), e.g. `paced-s*`.
NAME_GLOB = r"^[a-z0-9._*-]{1,64}$"


class RunSummary(BaseModel):
    run: schemas.RunOut
    latest: HistoryPoint | None = Field(
        description="The run's newest history snapshot; null before its first outcomes."
    )


class RunsSummary(BaseModel):
    items: list[RunSummary]


class ComparedRun(BaseModel):
    run: schemas.RunOut
    difficulty: schemas.Difficulty
    mean_pass_rate: float | None
    history: list[HistoryPoint]


class Difference(BaseModel):
    problem_id: str
    prompt: str  # cut to the first 2,000 characters (prompt_truncated says so)
    prompt_truncated: bool
    answer: str | None
    pass_rates: list[float] = Field(description="k/n in the pair's first and second run")
    attempts: list[float] = Field(description="effective attempts in each run of the pair")
    difference: float = Field(description="first run's pass rate minus the second's")


class Comparison(BaseModel):
    dataset: str
    runs: list[ComparedRun]
    pair: list[str]
    differences: list[Difference]


class StepOutcomes(BaseModel):
    step: int | None = Field(description="null for outcomes posted without a step")
    attempts: int
    successes: int
    pass_rate: float
    outcomes: int = Field(description="outcome entries (requests) that step")
    last_accepted_at: datetime


class ProblemHistory(BaseModel):
    problem: schemas.ProblemOut
    stats: schemas.ProblemStatsOut
    steps: list[StepOutcomes]
    complete: bool = Field(
        description="false when the run's log was too long to scan whole: older steps missing"
    )


router = APIRouter(prefix="/v1", tags=["overview"], responses=errors(*AUTH, *DATABASE))


@router.get(
    "/runs-summary",
    response_model=RunsSummary,
    dependencies=[Depends(require_admin)],
)
def runs_summary(
    dataset: Annotated[str | None, Query(pattern=schemas.NAME_PATTERN)] = None,
    name: Annotated[
        str | None, Query(pattern=NAME_GLOB, description="run-name glob, e.g. paced-s*")
    ] = None,
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    """Every run (filtered by dataset and name glob) with its newest history snapshot:
    zone counts, mean weight, effective problems and when it was taken. One query."""
    with ctx.transaction() as uow:
        return {"items": overview.runs_summary(uow, dataset, name)}


@router.get(
    "/compare",
    response_model=Comparison,
    dependencies=[Depends(require_admin)],
    responses=errors(404),
)
def compare(
    runs_: Annotated[
        str, Query(alias="runs", max_length=1000, description="2 to 8 run names, comma-separated")
    ],
    pair: Annotated[
        str | None,
        Query(max_length=200, description="two of the runs for the differences table"),
    ] = None,
    bins: Annotated[int, Query(ge=1, le=200)] = 20,
    top: Annotated[int, Query(ge=0, le=100)] = 20,
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    """Runs of one dataset side by side (history, pass-rate histogram) and the problems
    whose pass rates differ most between two of them (the first two unless `pair`).
    Runs on different datasets are refused (422 on `runs`)."""
    names = overview.parse_run_list("runs", runs_, at_least=2, at_most=overview.MAX_COMPARED_RUNS)
    pair_names = (
        overview.parse_run_list("pair", pair, at_least=2, at_most=2) if pair is not None else None
    )
    with ctx.transaction() as uow:
        return overview.compare(uow, ctx.registry, names, pair_names, bins, top)


@router.get(
    "/runs/{run}/problem-history/{problem_id:path}",
    response_model=ProblemHistory,
    dependencies=[Depends(require_run_access)],
    responses=errors(404),
)
def problem_history(run: str, problem_id: str, ctx: AppContext = Depends(get_ctx)):
    """One problem of a run: its text, current stats and outcomes summed per step."""
    with ctx.transaction() as uow:
        return overview.problem_history(uow, runs.require(uow, run), problem_id)
