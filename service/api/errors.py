"""Exception handlers: every failure becomes a JSON 4xx/503 that says what went wrong."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from service.errors import DomainError, IdempotentReplay

log = logging.getLogger("paced")
RETRY_AFTER_S = "1"


def _json_safe(value: Any) -> Any:
    """NaN/Infinity inputs must be echoed back as text: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _json_safe(jsonable_encoder(exc.errors(), custom_encoder={float: _json_safe}))
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(IdempotentReplay)
    async def replay(_: Request, exc: IdempotentReplay) -> JSONResponse:
        return JSONResponse(exc.response, headers={"Idempotent-Replayed": "true"})

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # Connection loss, server restart, SQLite lock timeout: nothing was committed, so the
        # client may safely retry (outcome posts carry an Idempotency-Key).
        log.warning("database unavailable: %s", str(exc).splitlines()[0])
        return JSONResponse(
            {"detail": "database temporarily unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_S},
        )

    @app.exception_handler(DBAPIError)
    async def database_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await database_unavailable(_, exc)
        log.exception("database error")
        return JSONResponse(
            {"detail": "database error; retry later"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_S},
        )
