"""Across runs: /v1/runs-summary, /v1/compare and /v1/runs/{run}/problem-history/{id}.

What the runs overview, the compare page and the problem page read; notebooks get the same
data through the client (runs_summary, compare, problem_history).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.api import schemas
from service.api.deps import get_ctx
from service.api.responses import AUTH, DATABASE, errors
from service.api.security import require_admin, require_run_access
from service.context import AppContext
from service.domain import overview, reports

MOST = overview.MAX_COMPARED_RUNS
router = APIRouter(prefix="/v1", tags=["overview"], responses=errors(*AUTH, *DATABASE))


@router.get(
    "/runs-summary",
    dependencies=[Depends(require_admin)],
)
def runs_summary(
    dataset: Annotated[schemas.Name | None, Query()] = None,
    name: Annotated[
        str | None, Query(pattern=schemas.NAME_GLOB, description="run-name glob, e.g. paced-s*")
    ] = None,
    rollouts: Annotated[
        bool,
        Query(description="Also count each run's rollouts (a scan of its problems' rows)."),
    ] = False,
    ctx: AppContext = Depends(get_ctx),
) -> reports.RunsSummary:
    """Every run (filtered by dataset and name glob) with its newest history snapshot:
    zone counts, mean weight, effective problems and when it was taken. One query (two more
    with rollouts=true)."""
    items = ctx.use(overview.runs_summary, ctx.registry, dataset, name, rollouts)
    return reports.RunsSummary(items=items)


@router.get(
    "/compare",
    dependencies=[Depends(require_admin)],
    responses=errors(404),
)
def compare(
    runs_: Annotated[
        str,
        Query(
            alias="runs",
            max_length=4000,
            pattern=schemas.name_list_pattern(2, MOST),
            description="2 to 8 run names, comma-separated, each named once",
        ),
        schemas.states_the_rule(schemas.name_list_rule(2, MOST)),
    ],
    pair: Annotated[
        str | None,
        Query(
            max_length=1000,
            pattern=schemas.name_list_pattern(2, 2),
            description="two of the runs for the differences table",
        ),
        schemas.states_the_rule(schemas.name_list_rule(2, 2)),
    ] = None,
    bins: Annotated[int, Query(ge=1, le=200)] = 20,
    top: Annotated[int, Query(ge=0, le=100)] = 20,
    ctx: AppContext = Depends(get_ctx),
) -> reports.Comparison:
    """Runs of one dataset side by side (history, pass-rate histogram) and the problems
    whose pass rates differ most between two of them (the first two unless `pair`).
    Runs on different datasets are refused (422 on `runs`)."""
    names = overview.parse_run_list("runs", runs_, at_least=2, at_most=overview.MAX_COMPARED_RUNS)
    pair_names = (
        overview.parse_run_list("pair", pair, at_least=2, at_most=2) if pair is not None else None
    )
    return ctx.use(overview.compare, ctx.registry, names, pair_names, bins, top)


@router.get(
    "/runs/{run}/problem-history/{problem_id:path}",
    dependencies=[Depends(require_run_access)],
    responses=errors(404),
)
def problem_history(
    run: str, problem_id: str, ctx: AppContext = Depends(get_ctx)
) -> reports.ProblemHistory:
    """One problem of a run: its text, current stats and outcomes summed per step."""
    return ctx.on_run(run, overview.problem_history, problem_id)
