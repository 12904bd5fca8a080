"""Health and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from service.api import schemas
from service.api.deps import get_ctx
from service.api.responses import AUTH, errors
from service.api.security import require_admin
from service.context import AppContext

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=schemas.Health)
def healthz():
    return {"status": "ok"}


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(require_admin)],
    responses=errors(*AUTH),
)
def metrics(ctx: AppContext = Depends(get_ctx)):
    ctx.metrics.observe_prompt_cache(ctx.prompts.hits, ctx.prompts.misses, ctx.prompts.nbytes)
    return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
