"""Exception handlers: every failure becomes a JSON 4xx/503 that says what went wrong."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import Scope

from service.errors import DomainError, IdempotentReplay

log = logging.getLogger("paced")
JSON_MEDIA_TYPE = "application/json"
RETRY_AFTER_S = "1"
NUL_IN_TEXT = {
    "loc": ["request"],
    "msg": "text may not contain NUL (\\u0000) characters",
    "type": "value_error",
}


def _json_safe(value: Any) -> Any:
    """NaN/Infinity inputs must be echoed back as text: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def is_json(content_type: str) -> bool:
    """application/json or application/*+json, parameters (charset) aside: what FastAPI
    parses as JSON."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON_MEDIA_TYPE or (
        media.startswith("application/") and media.endswith("+json")
    )


def unsupported_body(request: Request, errors: Sequence[Any]) -> str | None:
    """The 415's message when a body failed validation because it is not JSON: bytes that do
    not parse (with or without a Content-Type), or a body sent under another Content-Type
    (curl -d sends application/x-www-form-urlencoded; FastAPI then validates the raw text and
    would answer a 422 about dictionaries). None: an ordinary 422."""
    decode = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if decode is not None:
        where = decode.get("loc", ())[-1] if decode.get("loc") else "?"
        reason = (decode.get("ctx") or {}).get("error", "not JSON")
        return (
            f"the body is not JSON ({reason} at character {where}): send a JSON body with "
            f"Content-Type: {JSON_MEDIA_TYPE}"
        )
    content_type = request.headers.get("content-type")
    has_body = request.headers.get("content-length") != "0"
    about_body = any(tuple(e.get("loc", ()))[:1] == ("body",) for e in errors)
    if content_type and not is_json(content_type) and has_body and about_body:
        return f"Content-Type {content_type!r} is not JSON: send the body as {JSON_MEDIA_TYPE}"
    return None


def allowed_methods(routers: list[APIRouter], scope: Scope) -> set[str]:
    """Every method some route answers on this path (GET and POST /v1/runs are two routes)."""
    methods: set[str] = set()
    for router in routers:
        for route in router.routes:
            match, _ = route.matches(scope)
            if match != Match.NONE:
                methods |= getattr(route, "methods", None) or set()
    return methods


def install(app: FastAPI, routers: list[APIRouter]) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 405:
            # Starlette's Allow names only the first route matching the path; a client (or
            # an OPTIONS probe) must learn every method the path answers.
            allow = ", ".join(sorted(allowed_methods(routers, request.scope)))
            exc = HTTPException(405, exc.detail, {**(exc.headers or {}), "Allow": allow})
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        not_json = unsupported_body(request, exc.errors())
        if not_json is not None:
            return JSONResponse({"detail": not_json}, status_code=415)
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
        if isinstance(exc, DataError) and "0x00" in str(exc.orig):
            # PostgreSQL text cannot hold NUL: the request is at fault, and a 503 would have
            # clients retry it forever. (SQLite stores NUL; the request then succeeds.)
            return JSONResponse({"detail": [NUL_IN_TEXT]}, status_code=422)
        if exc.connection_invalidated:
            return await database_unavailable(_, exc)
        log.exception("database error")
        return JSONResponse(
            {"detail": "database error; retry later"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_S},
        )
