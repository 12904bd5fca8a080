"""The batch use case (POST /v1/runs/{run}/batches) in one object.

A warm service draws from the run's in-memory index and takes the texts from the prompt
cache without touching the database, so that part runs right on the event loop (no
threadpool hop, no thread contention). Only database work goes through ``offload`` (the
threadpool): building or syncing the index (IndexRegistry's one freshness policy decides),
texts the cache does not hold, and claimed draws (draw keys, leases, skip_leased), which
write run state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from service.curriculum import draws
from service.db import UnitOfWork
from service.domain import claims, runs
from service.domain.activity import RequestActivity
from service.domain.curriculum import batch_columns, batch_items, columns_of, draw_or_conflict
from service.domain.index_registry import IndexRegistry, RunIndex
from service.domain.prompt_cache import Lookup, PromptCache
from service.domain.runs import RunRef

log = logging.getLogger("paced")
# starlette's run_in_threadpool, injected so the domain does not import the web framework.
Offload = Callable[..., Awaitable[Any]]
Transaction = Callable[[], AbstractContextManager[UnitOfWork]]
# The prompt-cache prefill reads a chunk only after this long without a request in flight.
PREFILL_IDLE_GAP_S = 0.05


@dataclass
class PendingBatch:
    """A drawn batch whose missing problem texts may still have to be read."""

    dataset_id: int
    result: draws.Draw
    ids: list[int]
    cached: Lookup

    @property
    def needs_database(self) -> bool:
        """Texts to read, or the dataset's version to check, before the batch is complete."""
        return not self.cached.complete

    def body(self, columns: bool = False) -> dict[str, Any]:
        texts = self.cached.found
        build = batch_columns if columns else batch_items
        return build(self.result, [texts[pid] for pid in self.ids])


class Sampler:
    def __init__(
        self,
        registry: IndexRegistry,
        prompts: PromptCache,
        transaction: Transaction,
        run_refs: dict[str, RunRef],
        offload: Offload,
        *,
        prefill: bool = True,
        activity: RequestActivity | None = None,
    ) -> None:
        self._registry = registry
        self._prompts = prompts
        self._transaction = transaction
        self._run_refs = run_refs
        self._offload = offload
        self._prefill = prefill
        self._activity = activity or RequestActivity()
        self._closed = threading.Event()
        self._prefilled: set[int] = set()
        self._prefill_guard = threading.Lock()

    async def batch(
        self,
        run: str,
        spec: claims.BatchSpec,
        draw_key: str | None = None,
        lease: claims.LeaseSpec | None = None,
        *,
        columns: bool = False,
    ) -> dict[str, Any]:
        """The response body of a batch request: the schema's exact shape, or with `columns`
        the columnar format (curriculum.batch_columns)."""
        if draw_key is not None or lease is not None or spec.skip_leased:
            body = await self._offload(self._claimed, run, spec, draw_key, lease)
            return columns_of(body) if columns else body  # type: ignore[no-any-return]
        ref = self._run_refs.get(run)
        entry = None if ref is None else self._registry.fresh(ref.id)
        if ref is None or entry is None:
            pending = await self._offload(self._with_database, run, spec)
        else:
            pending = self._pending(entry, ref, spec)
            if pending.needs_database:
                await self._offload(self._read_texts, pending)
        return pending.body(columns)  # type: ignore[no-any-return]

    def _pending(self, entry: RunIndex, ref: RunRef, spec: claims.BatchSpec) -> PendingBatch:
        result = draw_or_conflict(entry, spec.size, spec.seed, spec.mode, spec.fill)
        ids = result.problem_ids.tolist()
        return PendingBatch(ref.dataset_id, result, ids, self._prompts.lookup(ref.dataset_id, ids))

    # ---- what runs in the threadpool ------------------------------------------------------------

    def _with_database(self, run: str, spec: claims.BatchSpec) -> PendingBatch:
        with self._transaction() as uow:
            ref = runs.require_ref(uow, run, self._run_refs)
            pending = self._pending(self._registry.get(uow.session, ref), ref, spec)
            self._fill(uow, pending)
        self._start_prefill(ref.dataset_id)
        return pending

    def _start_prefill(self, dataset_id: int) -> None:
        """First use of a dataset in this process: warm the prompt cache in the background
        (PromptCache.prefill), so draws of problems never served before find their texts."""
        with self._prefill_guard:
            if not self._prefill or dataset_id in self._prefilled or self._closed.is_set():
                return
            self._prefilled.add(dataset_id)
        thread = threading.Thread(
            target=self._run_prefill, args=(dataset_id,), name="paced-prefill", daemon=True
        )
        thread.start()

    def _run_prefill(self, dataset_id: int) -> None:
        try:
            with self._transaction() as uow:
                stored = self._prompts.prefill(uow.session, dataset_id, self._wait_for_quiet)
            log.info("prompt cache: %d texts of dataset %d prefilled", stored, dataset_id)
        except Exception:  # only a warm-up: draws read what they miss themselves
            log.warning("prompt cache prefill of dataset %d failed", dataset_id, exc_info=True)

    def _wait_for_quiet(self) -> bool:
        return self._activity.wait_idle(PREFILL_IDLE_GAP_S, self._closed)

    def close(self) -> None:
        """Stop background work (a prefill stops before its next chunk)."""
        self._closed.set()

    def _read_texts(self, pending: PendingBatch) -> None:
        with self._transaction() as uow:
            self._fill(uow, pending)

    def _fill(self, uow: UnitOfWork, pending: PendingBatch) -> None:
        cached = pending.cached
        if cached.complete:
            return
        # A due version check reads every id through texts() (which checks, then serves
        # what is still cached); otherwise only the missing ones.
        wanted = pending.ids if cached.check_due else cached.missing
        cached.found.update(self._prompts.texts(uow.session, pending.dataset_id, wanted))
        pending.cached = Lookup(cached.found, [])

    def _claimed(
        self,
        run: str,
        spec: claims.BatchSpec,
        draw_key: str | None,
        lease: claims.LeaseSpec | None,
    ) -> dict[str, Any]:
        with self._transaction() as uow:
            ref = runs.require_ref(uow, run, self._run_refs)
            return claims.batch(uow, self._registry, self._prompts, ref, spec, draw_key, lease)
