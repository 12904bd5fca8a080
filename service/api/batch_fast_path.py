"""POST /v1/runs/{run}/batches without the framework's per-request machinery, for the plain
request a trainer sends on every step.

A warm batch costs ~1 ms of the service's own work; FastAPI's routing over every route,
dependency solving, the pydantic body model and the Response object added as much again
(docs/benchmarks/profile-*.md). This pure ASGI layer sits inside the metrics and body-limit
middlewares and answers only a request it can prove is ordinary: a JSON body with exactly
the schema's types (size, seed, mode, fill; no draw key, lease or skip_leased), within the
configured limits, authorised by the same rules as the route (security.require_run_access)
without a database lookup. Anything else — a field it does not know, a wrong type, a token
it has not seen, a domain error such as 409 — goes on to the FastAPI route with the body
replayed, so every error, status code and byte of the contract is the route's own. Both
call the same Sampler, so the 200 responses are the same bytes.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.fast_json import BATCH_COLUMNS, JSON
from service.auth import digest, same_secret
from service.context import AppContext
from service.domain import claims

PREFIX = "/v1/runs/"
SUFFIX = "/batches"
MODES = ("proportional", "uniform")
FILLS = ("none", "unseen", "unseen_then_uniform")
FIELDS = {"size", "seed", "mode", "fill", "draw_key", "lease", "skip_leased"}
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


def batch_route(router: APIRouter) -> BaseRoute:
    """The FastAPI route the fast path stands in for (POST /v1/runs/{run}/batches)."""
    template = PREFIX + "{run}" + SUFFIX
    for route in router.routes:
        if getattr(route, "path", None) == template and "POST" in getattr(route, "methods", ()):
            return route
    raise LookupError(f"no POST {template} route")


def ordinary_spec(body: bytes, max_size: int) -> tuple[claims.BatchSpec, str] | None:
    """The batch a body asks for, when it is a plain, valid request; else None (the route
    decides, with its own error if there is one). Returns (spec, mode label)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or "size" not in data or not FIELDS.issuperset(data):
        return None
    size, seed = data["size"], data.get("seed")
    mode, fill = data.get("mode", "proportional"), data.get("fill", "none")
    if type(size) is not int or not 1 <= size <= max_size:
        return None
    if seed is not None and (type(seed) is not int or not SEED_MIN <= seed <= SEED_MAX):
        return None
    if mode not in MODES or fill not in FILLS:
        return None
    if data.get("draw_key") is not None or data.get("lease") is not None:
        return None
    if data.get("skip_leased", False) is not False:
        return None
    return claims.BatchSpec(size, seed, mode, fill, False), mode


class BatchFastPath:
    def __init__(self, app: ASGIApp, ctx: AppContext, route: BaseRoute) -> None:
        self.app = app
        self.ctx = ctx
        self.route = route  # the FastAPI route: the metrics middleware reads its template
        token = ctx.settings.admin_token
        self.admin_digest = digest(token) if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        run = self._run_name(scope)
        if run is None:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if not _plain_json(headers.get(b"content-type")) or not self._authorised(
            run, headers.get(b"authorization")
        ):
            await self.app(scope, receive, send)
            return
        body, messages = await _read_body(receive)
        if body is not None:
            served = await self._serve(run, body, headers.get(b"accept"), scope, send)
            if served:
                return
        await self.app(scope, _replay(messages, receive), send)

    def _run_name(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        path: str = scope["path"]
        if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
            return None
        run = path[len(PREFIX) : -len(SUFFIX)]
        return run if run and "/" not in run else None

    def _authorised(self, run: str, authorization: bytes | None) -> bool:
        """The route's rule (admin, or the run's own token), from memory only."""
        if self.admin_digest is None:
            return True
        if authorization is None:
            return False
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        token_digest = digest(token)
        if same_secret(token_digest, self.admin_digest):
            return True
        run_id = self.ctx.token_cache.get(token_digest)
        ref = self.ctx.run_refs.get(run)
        return run_id is not None and ref is not None and ref.id == run_id

    async def _serve(
        self, run: str, body: bytes, accept: bytes | None, scope: Scope, send: Send
    ) -> bool:
        ctx = self.ctx
        parsed = ordinary_spec(body, ctx.settings.max_batch_size)
        if parsed is None:
            return False
        spec, mode = parsed
        columns = accept is not None and BATCH_COLUMNS.encode() in accept
        try:
            result = await ctx.sampler.batch(run, spec, columns=columns)
        except Exception:  # a 404, 409, 503...: the route raises it again, and answers it
            return False
        ctx.metrics.batches_served.labels(mode).inc()
        ctx.metrics.batch_items_served.inc(result.items)
        scope["route"] = self.route
        media_type = BATCH_COLUMNS if columns else JSON
        # The headers a Starlette Response of these bytes sends, in its order.
        start: dict[str, Any] = {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(result.content)).encode()),
                (b"content-type", media_type.encode()),
            ],
        }
        await send(start)
        await send({"type": "http.response.body", "body": result.content})
        return True


def _plain_json(content_type: bytes | None) -> bool:
    """No Content-Type, or application/json (any case, parameters aside): bodies the route
    surely parses as JSON. Other types (application/*+json included, whose parsing depends
    on the whole header) go to the route, which decides between JSON and a 415."""
    if content_type is None:
        return True
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The first value of each header (what Starlette's headers.get returns)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        found.setdefault(name, value)
    return found


async def _read_body(receive: Receive) -> tuple[bytes | None, list[Message]]:
    """The whole body (None if the client went away first) and the messages it came in."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out the messages already read, then the real ones."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
