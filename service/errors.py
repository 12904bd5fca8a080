"""Domain errors. The API layer maps each to one HTTP status; services raise, never format."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class InvalidItems(DomainError):
    """422 whose detail lists offending items, in FastAPI's loc/msg/type shape."""

    status_code = 422

    def __init__(self, field: str, msg: str, *, items: list[Any] | None = None, **ctx: Any):
        entry: dict[str, Any] = {"loc": ["body", field], "msg": msg, "type": "value_error"}
        if items is not None:
            entry["items"] = items
        if ctx:
            entry["ctx"] = ctx
        super().__init__([entry])


class Forbidden(DomainError):
    status_code = 403


class IdempotentReplay(Exception):
    """A retried request whose first response is returned as is; the transaction rolls back."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("idempotent replay")
        self.response = response


class InvalidQuery(DomainError):
    """422 naming the query parameter at fault, in FastAPI's loc/msg/type shape."""

    status_code = 422

    def __init__(self, field: str, msg: str) -> None:
        super().__init__([{"loc": ["query", field], "msg": msg, "type": "value_error"}])
