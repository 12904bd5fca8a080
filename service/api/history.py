"""/v1/runs/{run}/history and /v1/runs/{run}/overview: what the dashboard and CLI read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from service.api import schemas
from service.api.deps import get_ctx
from service.api.responses import AUTH, DATABASE, errors
from service.api.security import require_run_access
from service.context import AppContext
from service.domain import history, runs

router = APIRouter(
    prefix="/v1/runs",
    tags=["history"],
    dependencies=[Depends(require_run_access)],
    responses=errors(*AUTH, 404, *DATABASE),
)


class HistoryPoint(BaseModel):
    step: int
    zones: schemas.Zones
    mean_pass_rate: float | None
    mean_weight: float
    effective_problems: float
    created_at: datetime


class HistoryOut(BaseModel):
    items: list[HistoryPoint]


class ProblemSummary(BaseModel):
    problem_id: str
    attempts: float  # effective (half-life discounted) counts, as the weights use them
    successes: float
    pass_rate: float
    weight: float
    last_step: int
    prompt: str  # cut to the first 2,000 characters (prompt_truncated says so)
    prompt_truncated: bool
    answer: str | None


class KernelCurve(BaseModel):
    """The run's w(p), for drawing: the dashboard plots it instead of recomputing it."""

    p: list[float] = Field(description="201 evenly spaced pass rates from 0 to 1")
    w: list[float] = Field(description="w(p) = p^alpha (1-p)^beta at each p")
    at_bins: list[float] = Field(description="w at the centre of each difficulty histogram bin")


class Overview(BaseModel):
    run: schemas.RunOut
    difficulty: schemas.Difficulty
    mean_pass_rate: float | None
    top_frontier: list[ProblemSummary]
    recently_mastered: list[ProblemSummary]
    kernel_curve: KernelCurve


@router.get("/{run}/history", response_model=HistoryOut)
def get_history(run: str, ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    with ctx.transaction() as uow:
        return {"items": history.history(uow, runs.require(uow, run))}


@router.get("/{run}/overview", response_model=Overview)
def get_overview(
    run: str,
    bins: Annotated[int, Query(ge=1, le=200)] = 20,
    top: Annotated[int, Query(ge=0, le=100)] = 10,
    ctx: AppContext = Depends(get_ctx),
) -> dict[str, Any]:
    with ctx.transaction() as uow:
        return history.overview(uow, ctx.registry, runs.require(uow, run), bins, top)
