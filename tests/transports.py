"""HTTP transports for tests that need a lost answer after the service applied the request."""

from __future__ import annotations

import httpx


class DropFirstOutcomesResponse(httpx.HTTPTransport):
    """The first outcomes POST reaches the service and is applied, but its answer is lost."""

    def __init__(self) -> None:
        super().__init__()
        self.outcome_keys: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.endswith("/outcomes"):
            self.outcome_keys.append(request.headers["Idempotency-Key"])
            if len(self.outcome_keys) == 1:
                response.read()
                raise httpx.ReadError("connection reset after the request was applied")
        return response
