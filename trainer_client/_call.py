"""One HTTP exchange as data (Call) and how its answer is read, with the small pieces every
endpoint builder in _endpoints.py uses (path segments, bodies, chunks)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from . import models
from ._retry import RetryMode
from .errors import Conflict, PacedError

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


def created_or_found(
    parse: Callable[[Any], T], kind: str, name: str, exist_ok: bool
) -> Callable[[httpx.Response], T]:
    """How a create's answer is read. The service gets or creates: 201 created, 200 found
    with the same settings, 409 found with others (raised before this runs). Without
    exist_ok a found one is a Conflict, as it was before the service returned it."""

    def read(response: httpx.Response) -> T:
        if response.status_code == 200 and not exist_ok:
            raise Conflict(
                response.status_code,
                f"{kind} {name!r} already exists with these settings (pass exist_ok=True to "
                "get it)",
                response.request.method,
                str(response.request.url),
            )
        return parse(response.json())

    return read


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


def repeated_ids(ids: Iterable[str]) -> None:
    """ValueError listing the ids given more than once (the service refuses them in one
    request; across the chunks of a long list only the client can see them)."""
    repeated = sorted(pid for pid, n in Counter(ids).items() if n > 1)
    if repeated:
        raise ValueError(f"problem ids given more than once: {repeated[:20]}")


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    # An empty list gives no chunks: nothing to send, the summed result is all zeros.
    return [items[i : i + size] for i in range(0, len(items), size)]


def create_retry(exist_ok: bool) -> RetryMode:
    # With exist_ok a repeat returns what the first attempt made: as safe to resend as a keyed
    # post (the token of a run made by a lost attempt is gone, see docs/client.md).
    return RetryMode.KEYED if exist_ok else RetryMode.UNSAFE


def sum_upserts(results: Iterable[models.UpsertResult]) -> models.UpsertResult:
    results = list(results)
    return models.UpsertResult(
        inserted=sum(r.inserted for r in results), updated=sum(r.updated for r in results)
    )


def sum_accepted(results: Iterable[models.OutcomesAccepted]) -> models.OutcomesAccepted:
    return models.OutcomesAccepted(accepted=sum(r.accepted for r in results))
