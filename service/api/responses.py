"""The error responses each operation documents in the OpenAPI document: one model, one
meaning per status, so a generated client gets typed errors instead of "unexpected status".

422 is FastAPI's own (HTTPValidationError, documented wherever a route takes input); every
other error the service answers is `{"detail": "..."}` (the 413 adds `limit_bytes`).
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel, Field


class ErrorMessage(BaseModel):
    detail: str = Field(description="what went wrong, in words")


class BodyTooLargeMessage(ErrorMessage):
    limit_bytes: int = Field(description="the service's PACED_MAX_BODY_BYTES")


DESCRIBED: dict[int, tuple[str, type[BaseModel]]] = {
    400: ("the body could not be read", ErrorMessage),
    401: ("missing or invalid bearer token", ErrorMessage),
    403: ("the token may not do this", ErrorMessage),
    404: ("a named run, dataset or problem does not exist", ErrorMessage),
    409: ("conflicts with the current state (exists already, or a key reused)", ErrorMessage),
    413: ("the body is larger than PACED_MAX_BODY_BYTES", BodyTooLargeMessage),
    415: ("the body is not JSON, or its Content-Type is not application/json", ErrorMessage),
    503: ("database temporarily unavailable; retry after Retry-After seconds", ErrorMessage),
}

# Every route that needs a token can answer these; every route with a body these.
AUTH = (401, 403)
BODY = (400, 413, 415)
DATABASE = (503,)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given error statuses."""
    return {
        code: {"model": DESCRIBED[code][1], "description": DESCRIBED[code][0]}
        for code in sorted(set(codes))
    }


def found(model: type[BaseModel], kind: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of a get-or-create (POST /v1/datasets, /v1/runs; 201 is for a created one)."""
    return {
        200: {
            "model": model,
            "description": f"the {kind} existed with the same settings: returned as it is "
            "(a run without its token, which only its creation returns)",
        }
    }


def operation_id(route: APIRoute) -> str:
    """Operation ids are the route functions' names (`draw_batch`, not
    `draw_batch_v1_runs__run__batches_post`): what generated clients name their functions."""
    return route.name
