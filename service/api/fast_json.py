"""JSON responses serialised by orjson, for routes whose payload is already the schema's shape.

Returning a Response skips FastAPI's response_model validation, so only use this where the
domain layer builds plain dicts/lists/str/int/float/None exactly as the declared schema says
(tests compare these routes against the schema).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

JSON = "application/json"
# The batch route's columnar format (schemas.BatchColumns), sent only to a client whose Accept
# header names it; every other client gets the row format it always got.
BATCH_COLUMNS = "application/vnd.paced.batch-columns+json"


def json_response(content: Any, status_code: int = 200, media_type: str = JSON) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type=media_type)


def bytes_response(content: bytes, status_code: int = 200, media_type: str = JSON) -> Response:
    """A body the domain already encoded (the batch route)."""
    return Response(content, status_code=status_code, media_type=media_type)
