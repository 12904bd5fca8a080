"""Fakes for the client unit tests (imported by the test_client_* modules).

The network is the true external boundary of PacedClient, so these tests replace it (and only
it) with httpx.MockTransport: everything above the socket - request building, retries, backoff,
idempotency keys, chunking, error mapping, parsing - runs for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from trainer_client._retry import Backoff

# Zero backoff: retries happen at once, so tests never sleep (Retry-After tests patch sleep).
NO_WAIT = Backoff(base=0.0, cap=0.0)


class Recorder:
    """A MockTransport handler that keeps every request and answers with `respond`."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


def scripted(*steps: httpx.Response | Exception) -> Recorder:
    """Answer the n-th request with steps[n]; an Exception step is raised (a network failure)."""

    def respond(request: httpx.Request) -> httpx.Response:
        index = len(recorder.requests) - 1
        assert index < len(steps), f"unexpected extra request {request.method} {request.url}"
        step = steps[index]
        if isinstance(step, Exception):
            raise step
        return step

    recorder = Recorder(respond)
    return recorder


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def fail(status: int, detail: Any = "boom", headers: dict[str, str] | None = None):
    return httpx.Response(status, json={"detail": detail}, headers=headers)
