"""Authorization dependencies. With no admin token configured the service is open."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from service.api.deps import get_ctx
from service.auth import digest, same_secret
from service.context import AppContext
from service.domain import runs
from service.errors import NotFound
from service.store import runs as run_store

CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    admin: bool
    run_id: int | None = None


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer ...)",
            CHALLENGE,
        )
    return token.strip()


# The dependencies are async so the common case (no auth, or a cached token) costs no
# threadpool hop; the rare database lookups run in the threadpool.


async def principal(request: Request, ctx: AppContext = Depends(get_ctx)) -> Principal:
    admin_token = ctx.settings.admin_token
    if not admin_token:
        return Principal(admin=True)
    token = _bearer(request)
    if same_secret(digest(token), digest(admin_token)):
        return Principal(admin=True)
    token_digest = digest(token)
    run_id = ctx.token_cache.get(token_digest)
    if run_id is None:
        run_id = await run_in_threadpool(_run_for_token, ctx, token_digest)
    if run_id is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token", CHALLENGE)
    return Principal(admin=False, run_id=run_id)


def _run_for_token(ctx: AppContext, token_digest: str) -> int | None:
    with ctx.session_factory() as session:
        run_id = run_store.id_for_token_hash(session, token_digest)
    if run_id is not None:
        ctx.token_cache[token_digest] = run_id
    return run_id


async def require_admin(who: Principal = Depends(principal)) -> Principal:
    if not who.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint needs the admin token")
    return who


async def require_run_access(request: Request, who: Principal = Depends(principal)) -> Principal:
    """Admin, or the token of the run named in the path."""
    if who.admin:
        return who
    ctx: AppContext = request.app.state.ctx
    name = str(request.path_params.get("run", ""))
    ref = ctx.run_refs.get(name)
    run_id = ref.id if ref is not None else await run_in_threadpool(_run_id_by_name, ctx, name)
    if run_id != who.run_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this token belongs to another run")
    return who


def _run_id_by_name(ctx: AppContext, name: str) -> int | None:
    try:
        with ctx.transaction() as uow:
            return runs.require_ref(uow, name, ctx.run_refs).id
    except NotFound:
        return None
