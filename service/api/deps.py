"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from service.context import AppContext


async def get_ctx(request: Request) -> AppContext:
    # async: FastAPI runs a plain `def` dependency in the threadpool, a hop per request.
    return request.app.state.ctx
