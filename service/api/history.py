"""/v1/runs/{run}/history and /v1/runs/{run}/overview: what the dashboard and CLI read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.api.deps import get_ctx
from service.api.responses import AUTH, DATABASE, errors
from service.api.security import require_run_access
from service.context import AppContext
from service.domain import history, reports, runs

router = APIRouter(
    prefix="/v1/runs",
    tags=["history"],
    dependencies=[Depends(require_run_access)],
    responses=errors(*AUTH, 404, *DATABASE),
)


@router.get("/{run}/history", response_model=reports.HistoryOut)
def get_history(run: str, ctx: AppContext = Depends(get_ctx)) -> reports.HistoryOut:
    with ctx.transaction() as uow:
        return reports.HistoryOut(items=history.history(uow, runs.require(uow, run)))


@router.get("/{run}/overview", response_model=reports.Overview)
def get_overview(
    run: str,
    bins: Annotated[int, Query(ge=1, le=200)] = 20,
    top: Annotated[int, Query(ge=0, le=100)] = 10,
    ctx: AppContext = Depends(get_ctx),
) -> reports.Overview:
    with ctx.transaction() as uow:
        return history.overview(uow, ctx.registry, runs.require(uow, run), bins, top)
