"""/v1/runs"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Query, Response, status
from fastapi.exceptions import RequestValidationError

from service.api import schemas
from service.api.deps import get_ctx
from service.api.fast_json import BATCH_COLUMNS, JSON, bytes_response
from service.api.limits import check_batch_size, check_items
from service.api.responses import AUTH, BODY, DATABASE, errors, found
from service.api.security import require_admin, require_run_access
from service.context import AppContext
from service.domain import claims, curriculum, outcomes, runs, views

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=errors(*AUTH, *DATABASE))
ADMIN = [Depends(require_admin)]
RUN = [Depends(require_run_access)]
DEFAULT_LEASE_S = 600.0


@router.get("", dependencies=ADMIN)
def list_runs(ctx: AppContext = Depends(get_ctx)) -> views.RunList:
    return views.RunList(items=ctx.use(runs.list_all))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=ADMIN,
    # 404: the dataset; 409: the name is taken by a run with other settings
    responses={**errors(*BODY, 404, 409), **found(views.RunOut, "run")},
)
def create_run(
    body: schemas.RunCreate, response: Response, ctx: AppContext = Depends(get_ctx)
) -> views.RunOut:
    """Get or create: 201 with the new run (and its token, once, when auth is on); 200 with
    the existing run, without a token, when a run of this name has the same dataset, kernel
    and estimator (defaults filled in); 409 naming each differing setting otherwise."""
    obtained = ctx.use(
        runs.create,
        body.name,
        body.dataset,
        body.kernel.config(),
        body.estimator.config(),
        with_token=bool(ctx.settings.admin_token),
    )
    if not obtained.created:
        response.status_code = status.HTTP_200_OK
    return obtained.view


@router.get("/{run}", dependencies=RUN, responses=errors(404))
def get_run(run: str, ctx: AppContext = Depends(get_ctx)) -> views.RunOut:
    return ctx.use(runs.get, run)


@router.post(
    "/{run}/outcomes",
    dependencies=RUN,
    responses=errors(*BODY, 404, 409),  # 409: an Idempotency-Key reused with another body
)
def post_outcomes(
    run: str,
    body: schemas.OutcomesPost,
    ctx: AppContext = Depends(get_ctx),
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> views.OutcomesAccepted:
    check_items(ctx.settings, "outcomes", len(body.outcomes))
    items = body.outcomes  # plain dicts (OutcomeIn is a TypedDict)
    errors = schemas.successes_within_attempts(items)
    if errors:
        raise RequestValidationError(errors)
    result = ctx.on_run(run, outcomes.ingest, items, idempotency_key, ctx.outcomes_committed)
    ctx.metrics.outcomes_ingested.inc(len(items))
    ctx.metrics.attempts_ingested.inc(sum(o["attempts"] for o in items))
    return result


@router.get(
    "/{run}/problems/{problem_id:path}",
    dependencies=RUN,
    responses=errors(404),
)
def get_problem_stats(
    run: str, problem_id: str, ctx: AppContext = Depends(get_ctx)
) -> views.ProblemStatsOut:
    return ctx.on_run(run, curriculum.problem_stats, problem_id, ctx.registry)


@router.post(
    "/{run}/weights",
    dependencies=RUN,
    responses=errors(*BODY, 404),
)
def get_weights(
    run: str,
    body: Annotated[schemas.WeightsQuery | None, Body()] = None,
    ctx: AppContext = Depends(get_ctx),
) -> views.WeightsPage:
    query = body or schemas.WeightsQuery()
    if query.problem_ids is not None:
        check_items(ctx.settings, "problem_ids", len(query.problem_ids))
    return ctx.on_run(
        run, curriculum.weights, query.problem_ids, query.cursor, query.limit, ctx.registry
    )


@router.post(
    "/{run}/batches",
    response_model=schemas.Batch,
    dependencies=RUN,
    responses={
        **errors(*BODY, 404, 409),  # 409: nothing to draw, or a draw_key reused
        200: {"content": {BATCH_COLUMNS: {"schema": schemas.BatchColumns.model_json_schema()}}},
    },
)
async def draw_batch(
    run: str,
    body: schemas.BatchRequest,
    ctx: AppContext = Depends(get_ctx),
    accept: Annotated[str | None, Header()] = None,
):
    # async on purpose: a warm service draws from memory right on the event loop; the
    # sampler sends only database work to the threadpool (domain/sampler.py).
    check_batch_size(ctx.settings, body.size)
    spec = claims.BatchSpec(
        body.size, body.seed, body.mode, body.fill, body.skip_leased, epsilon=body.epsilon
    )
    lease = claims.LeaseSpec(body.lease.claimer, body.lease.ttl_s) if body.lease else None
    columns = accept is not None and BATCH_COLUMNS in accept
    result = await ctx.sampler.batch(run, spec, body.draw_key, lease, columns=columns)
    ctx.metrics.batches_served.labels(body.mode).inc()
    ctx.metrics.batch_items_served.inc(result.items)
    # The domain encoded exactly the schema's shape (domain/batch_body.py): no pydantic
    # re-validation, no second serialisation.
    return bytes_response(result.content, media_type=BATCH_COLUMNS if columns else JSON)


@router.get(
    "/{run}/rollout-queue",
    dependencies=RUN,
    responses=errors(404),
)
def rollout_queue(
    run: str,
    limit: Annotated[int, Query(ge=1, le=schemas.MAX_PAGE)] = 100,
    stale_after: Annotated[int | None, Query(ge=1)] = None,
    claimer: Annotated[schemas.Claimer | None, Query()] = None,
    lease_s: Annotated[schemas.LeaseSeconds | None, Query()] = None,
    skip_leased: bool = False,
    ctx: AppContext = Depends(get_ctx),
) -> views.RolloutQueue:
    # claimer: claim the items (not handed to anyone else until graded or lease_s passes).
    if lease_s is not None and claimer is None:
        raise RequestValidationError(schemas.LEASE_NEEDS_CLAIMER)
    lease = None if claimer is None else claims.LeaseSpec(claimer, lease_s or DEFAULT_LEASE_S)
    if lease is None and not skip_leased:
        return ctx.on_run(run, curriculum.rollout_queue, ctx.registry, limit, stale_after)
    return ctx.on_run(
        run, claims.rollout_queue, ctx.registry, limit, stale_after, lease, skip_leased
    )


@router.get("/{run}/difficulty", dependencies=RUN, responses=errors(404))
def difficulty(
    run: str,
    bins: Annotated[int, Query(ge=1, le=1000)] = 10,
    ctx: AppContext = Depends(get_ctx),
) -> views.Difficulty:
    return ctx.on_run(run, curriculum.difficulty, ctx.registry, bins)
