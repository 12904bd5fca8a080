"""paced trainer client: a typed HTTP client for the paced service and a bundled PACED
distillation trainer. Importing this package never imports torch."""

from trainer_client._retry import Backoff
from trainer_client.async_client import AsyncPacedClient
from trainer_client.client import PacedClient
from trainer_client.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PacedError,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)

__all__ = [
    "AsyncPacedClient",
    "Backoff",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PacedClient",
    "PacedError",
    "ServiceUnavailable",
    "Unauthorized",
    "ValidationFailed",
]
