"""The service's request limits as the client knows them, in one place.

The service advertises its limits in its OpenAPI document (`GET /openapi.json`:
service/api/limits.py writes `maxItems` of the outcome and problem lists and the `maximum`
of a batch's size from its settings). `PacedClient.limits()` reads them from there; the
defaults below are the service's defaults, what the client assumes before (or without)
asking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    # PACED_MAX_ITEMS_PER_REQUEST: longer outcome/problem lists are split by the client.
    max_items_per_request: int = 10_000
    # PACED_MAX_BATCH_SIZE: the largest batch one request may ask for.
    max_batch_size: int = 4096

    @classmethod
    def from_openapi(cls, document: dict[str, Any]) -> Limits:
        """The limits a service states in its OpenAPI document; defaults where it is silent."""
        schemas = document.get("components", {}).get("schemas", {})
        outcomes = schemas.get("OutcomesPost", {}).get("properties", {}).get("outcomes", {})
        size = schemas.get("BatchRequest", {}).get("properties", {}).get("size", {})
        return cls(
            max_items_per_request=int(outcomes.get("maxItems", cls.max_items_per_request)),
            max_batch_size=int(size.get("maximum", cls.max_batch_size)),
        )


DEFAULT_LIMITS = Limits()


# iter_weights' page: the service's largest (api/schemas.MAX_PAGE), the fastest full export
# measured by bench/weights_page.py (docs/benchmarks/weights_page.json).
ITER_WEIGHTS_PAGE = 10_000
