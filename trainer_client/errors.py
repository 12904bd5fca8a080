"""Exceptions raised by PacedClient and AsyncPacedClient.

Every failure the service reports becomes a PacedError subclass chosen by HTTP status, so a
training loop can catch exactly what it can handle (a 409 from a batch request with no eligible
problems, a 404 for a missing run) without parsing messages.
"""

from __future__ import annotations

from typing import Any

import httpx


class PacedError(Exception):
    """The service answered with an error status (or, for PacedConnectionError, not at all).

    `detail` is the FastAPI `detail` field as sent: a string, or a list of
    {"loc", "msg", "type"} items for validation errors.
    """

    def __init__(self, status_code: int | None, detail: Any, method: str, url: str) -> None:
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.url = url
        status = "no response" if status_code is None else str(status_code)
        super().__init__(f"{status} on {method} {url}: {format_detail(detail)}")


class NotFound(PacedError):
    """404: the dataset, run or problem does not exist."""


class Conflict(PacedError):
    """409: name taken, idempotency key reused with another body, or no eligible problems."""


class ValidationFailed(PacedError):
    """422: the request was rejected as a whole (e.g. unknown problem ids); nothing applied."""

    @property
    def offending_items(self) -> list[Any]:
        """The `items` the service listed (e.g. the unknown problem ids), across all entries."""
        if not isinstance(self.detail, list):
            return []
        found: list[Any] = []
        for entry in self.detail:
            if isinstance(entry, dict):
                found.extend(entry.get("items") or [])
        return found


class Unauthorized(PacedError):
    """401: missing or invalid bearer token."""


class Forbidden(PacedError):
    """403: the token is valid but not for this run."""


class RateLimited(PacedError):
    """429 after all retries were spent."""


class ServiceUnavailable(PacedError):
    """502/503/504 after all retries were spent: the service (or its proxy) is down or busy."""


class PacedConnectionError(ServiceUnavailable):
    """No HTTP response at all (connect error, timeout) after all allowed retries.

    Subclasses ServiceUnavailable so `except ServiceUnavailable` covers "the service is not
    there" in every form. The httpx exception is chained as __cause__.
    """


_BY_STATUS: dict[int, type[PacedError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
    502: ServiceUnavailable,
    503: ServiceUnavailable,
    504: ServiceUnavailable,
}


def error_from_response(response: httpx.Response) -> PacedError:
    """Build the PacedError subclass that matches an error response."""
    cls = _BY_STATUS.get(response.status_code, PacedError)
    return cls(
        response.status_code,
        _detail_of(response),
        response.request.method,
        str(response.request.url),
    )


def _detail_of(response: httpx.Response) -> Any:
    # FastAPI sends {"detail": ...}; a proxy in front of it may send HTML or plain text.
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body


def format_detail(detail: Any) -> str:
    """One line for an error message; validation items become `loc: msg` pairs."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", []))
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)
