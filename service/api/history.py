"""/v1/runs/{run}/history and /v1/runs/{run}/overview: what the dashboard and CLI read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.api.deps import get_ctx
from service.api.responses import AUTH, DATABASE, errors
from service.api.security import require_run_access
from service.context import AppContext
from service.domain import history, reports

router = APIRouter(
    prefix="/v1/runs",
    tags=["history"],
    dependencies=[Depends(require_run_access)],
    responses=errors(*AUTH, 404, *DATABASE),
)


@router.get("/{run}/history")
def get_history(run: str, ctx: AppContext = Depends(get_ctx)) -> reports.HistoryOut:
    return reports.HistoryOut(items=ctx.on_run(run, history.history, ctx.registry))


@router.get("/{run}/overview")
def get_overview(
    run: str,
    bins: Annotated[int, Query(ge=1, le=200)] = 20,
    top: Annotated[int, Query(ge=0, le=100)] = 10,
    ctx: AppContext = Depends(get_ctx),
) -> reports.Overview:
    return ctx.on_run(run, history.overview, ctx.registry, bins, top)
