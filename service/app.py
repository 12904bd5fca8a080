"""Application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from service import __version__
from service.api import dashboard, datasets, errors, history, overview, priors, runs, system
from service.api.batch_fast_path import BatchFastPath, batch_route
from service.api.body_limit import BodyLimitMiddleware
from service.api.document import complete_document
from service.api.responses import operation_id
from service.context import AppContext
from service.db import make_engine, make_session_factory
from service.domain.index_registry import IndexRegistry
from service.domain.prompt_cache import PromptCache
from service.metrics import Metrics, MetricsMiddleware
from service.settings import Settings

log = logging.getLogger("paced")

OPEN_WARNING = (
    "PACED_ADMIN_TOKEN is not set: the service is OPEN — anyone who can reach it can read and "
    "write every dataset and run. Keep it on loopback, or set PACED_ADMIN_TOKEN."
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. The database must already be migrated (``paced serve`` does it)."""
    settings = settings or Settings()
    if not settings.admin_token:
        log.warning(OPEN_WARNING)
    engine = make_engine(
        settings.database_url, pool_size=settings.pool_size, max_overflow=settings.max_overflow
    )
    session_factory = make_session_factory(engine)
    metrics = Metrics()
    ctx = AppContext(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        registry=IndexRegistry(session_factory, settings.sync_interval_s),
        metrics=metrics,
        prompts=PromptCache(
            max_bytes=int(settings.prompt_cache_mb * 2**20),
            check_interval_s=settings.sync_interval_s,
        ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.sampler.close()  # a prompt-cache prefill stops before its next chunk
        ctx.history.close()  # pending trailing snapshots are not written after shutdown

    # /docs and /redoc from Swagger UI's and ReDoc's files as fastapi-offline ships them (under
    # /static-offline-docs): they render with no internet, where FastAPI's own load a CDN.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="paced",
        version=__version__,
        description="PACED curriculum service: pass-rate-weighted batches for distillation.",
        # Bodies without a Content-Type (plain `curl -d`) are parsed as JSON.
        strict_content_type=False,
        generate_unique_id_function=operation_id,
    )
    app.state.ctx = ctx
    routers = [
        system.router,
        datasets.router,
        runs.router,
        priors.router,
        history.router,
        overview.router,
        dashboard.router,
    ]
    errors.install(app, routers)
    for router in routers:
        app.include_router(router)
    app.mount("/static", dashboard.static_files(), name="static")
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete_document(build_openapi(), settings)  # build_openapi caches its result
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if settings.batch_fast_path:  # innermost: inside the body limit and the metrics
        app.add_middleware(BatchFastPath, ctx=ctx, route=batch_route(runs.router))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, activity=ctx.activity)
    return app
