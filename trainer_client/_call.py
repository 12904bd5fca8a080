"""One HTTP exchange as data (Call) and how its answer is read, with the small pieces every
endpoint builder in _endpoints.py uses (path segments, bodies, chunks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from ._retry import RetryMode
from .errors import PacedError

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP exchange: what to send, how to retry it, how to read the answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry: RetryMode = RetryMode.SAFE
    # Set for hot paths that read the response's bytes themselves (no dict of the JSON
    # first); `parse` is then unused.
    parse_bytes: Callable[[httpx.Response], T] | None = None


def parse_response(call: Call[T], response: httpx.Response) -> T:
    if call.parse_bytes is not None:
        try:
            return call.parse_bytes(response)
        except ValidationError as exc:
            if any(error["type"] == "json_invalid" for error in exc.errors()):
                raise _not_json(response) from exc
            raise
    try:
        body = response.json()
    except ValueError as exc:
        raise _not_json(response) from exc
    return call.parse(body)


def _not_json(response: httpx.Response) -> PacedError:
    return PacedError(
        response.status_code,
        f"response is not JSON: {response.text[:200]!r}",
        response.request.method,
        str(response.request.url),
    )


def _seg(value: str) -> str:
    # Names and problem ids are path segments: quote everything, "/" included.
    return quote(str(value), safe="")


def _items(model: type[BaseModel]) -> Callable[[Any], list[Any]]:
    return lambda body: [model.model_validate(item) for item in body["items"]]


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    # An empty list gives no chunks: nothing to send, the summed result is all zeros.
    return [items[i : i + size] for i in range(0, len(items), size)]
