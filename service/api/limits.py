"""Configurable request limits (settings only), reported in the errors they cause and
stated in the OpenAPI document."""

from __future__ import annotations

from typing import Any

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


def document_limits(document: dict[str, Any], settings: Settings) -> None:
    """Write this service's limits into its OpenAPI document (in place): a client sees the
    limits the check_* functions above enforce, whatever the settings say."""
    schemas = document["components"]["schemas"]
    items = settings.max_items_per_request
    schemas["ProblemsUpsert"]["properties"]["problems"]["maxItems"] = items
    schemas["OutcomesPost"]["properties"]["outcomes"]["maxItems"] = items
    schemas["PriorsUpload"]["properties"]["items"]["maxItems"] = items
    for option in schemas["WeightsQuery"]["properties"]["problem_ids"]["anyOf"]:
        if option.get("type") == "array":
            option["maxItems"] = items
    schemas["BatchRequest"]["properties"]["size"]["maximum"] = settings.max_batch_size
