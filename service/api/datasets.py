"""/v1/datasets"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from service.api import schemas
from service.api.deps import get_ctx
from service.api.limits import check_items
from service.api.responses import AUTH, BODY, DATABASE, errors, found
from service.api.security import require_admin
from service.context import AppContext
from service.domain import datasets, views

router = APIRouter(
    prefix="/v1/datasets",
    tags=["datasets"],
    dependencies=[Depends(require_admin)],
    responses=errors(*AUTH, *DATABASE),
)


@router.get("")
def list_datasets(ctx: AppContext = Depends(get_ctx)) -> views.DatasetList:
    return views.DatasetList(items=ctx.use(datasets.list_all))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**errors(*BODY, 409), **found(views.DatasetOut, "dataset")},
)
def create_dataset(
    body: schemas.DatasetCreate, response: Response, ctx: AppContext = Depends(get_ctx)
) -> views.DatasetOut:
    """Get or create: 201 with the new dataset; 200 with the existing one when a dataset of
    this name has this description; 409 naming the description when it has another."""
    obtained = ctx.use(datasets.create, body.name, body.description)
    if not obtained.created:
        response.status_code = status.HTTP_200_OK
    return obtained.view


@router.get("/{dataset}", responses=errors(404))
def get_dataset(dataset: str, ctx: AppContext = Depends(get_ctx)) -> views.DatasetOut:
    return ctx.use(datasets.get, dataset)


@router.post("/{dataset}/problems", responses=errors(*BODY, 404))
def upsert_problems(
    dataset: str, body: schemas.ProblemsUpsert, ctx: AppContext = Depends(get_ctx)
) -> views.ProblemsUpserted:
    check_items(ctx.settings, "problems", len(body.problems))
    rows = body.model_dump()["problems"]  # one call: per-item dumps cost 5x more
    return ctx.use(datasets.upsert_problems, dataset, rows, ctx.problems_changed)


@router.get(
    "/{dataset}/problems/{problem_id:path}",
    responses=errors(404),
)
def get_problem(
    dataset: str, problem_id: str, ctx: AppContext = Depends(get_ctx)
) -> views.ProblemOut:
    return ctx.use(datasets.get_problem, dataset, problem_id)
