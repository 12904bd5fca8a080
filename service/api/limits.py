"""Configurable request limits, reported in the errors they cause."""

from __future__ import annotations

from service.errors import InvalidItems
from service.settings import Settings


def check_items(settings: Settings, field: str, count: int) -> None:
    limit = settings.max_items_per_request
    if count > limit:
        raise InvalidItems(
            field, f"too many items: {count} > {limit} per request", limit=limit, count=count
        )


def check_batch_size(settings: Settings, size: int) -> None:
    limit = settings.max_batch_size
    if size > limit:
        raise InvalidItems("size", f"batch size {size} exceeds the limit {limit}", limit=limit)
