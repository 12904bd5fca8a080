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

import orjson

from service.curriculum import draws
from service.db import UnitOfWork
from service.domain import claims, runs
from service.domain.activity import RequestActivity
from service.domain.batch_body import columns_body, rows_body
from service.domain.curriculum import columns_of, draw_or_conflict
from service.domain.index_registry import IndexRegistry, RunIndex
from service.domain.prompt_cache import Located, PromptCache
from service.domain.runs import RunRef

log = logging.getLogger("paced")
# starlette's run_in_threadpool, injected so the domain does not import the web framework.
Offload = Callable[..., Awaitable[Any]]
Transaction = Callable[[], AbstractContextManager[UnitOfWork]]
# The prompt-cache prefill reads a chunk only after this long without a request in flight.
PREFILL_IDLE_GAP_S = 0.05


@dataclass(frozen=True)
class BatchBody:
    """A batch response, encoded: the bytes and how many items they carry."""

    content: bytes
    items: int


def encode(located: Located, result: draws.Draw, columns: bool) -> BatchBody:
    build = columns_body if columns else rows_body
    return BatchBody(build(located.buffer, located.rows, result), len(result.problem_ids))


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
        # dataset id -> the prompt-cache generation a prefill was started for
        self._prefilled: dict[int, int | None] = {}
        self._prefill_guard = threading.Lock()

    async def batch(
        self,
        run: str,
        spec: claims.BatchSpec,
        draw_key: str | None = None,
        lease: claims.LeaseSpec | None = None,
        *,
        columns: bool = False,
    ) -> BatchBody:
        """The response body of a batch request, encoded: the schema's exact shape, or with
        `columns` the columnar format (curriculum.batch_columns)."""
        if draw_key is not None or lease is not None or spec.skip_leased:
            body = await self._offload(self._claimed, run, spec, draw_key, lease)
            content = orjson.dumps(columns_of(body) if columns else body)
            return BatchBody(content, len(body["items"]))
        ref = self._run_refs.get(run)
        entry = None if ref is None else self._registry.fresh(ref.id)
        if ref is None or entry is None:
            return await self._offload(self._with_database, run, spec, columns)  # type: ignore[no-any-return]
        result = draw_or_conflict(
            entry, spec.size, spec.seed, spec.mode, spec.fill, epsilon=spec.epsilon
        )
        located = self._prompts.located(ref.dataset_id, result.problem_ids, result.slots)
        if located is None:
            located = await self._offload(self._complete, ref.dataset_id, result)
        return encode(located, result, columns)

    # ---- what runs in the threadpool ------------------------------------------------------------

    def _with_database(self, run: str, spec: claims.BatchSpec, columns: bool) -> BatchBody:
        with self._transaction() as uow:
            ref = runs.require_ref(uow, run, self._run_refs)
            entry: RunIndex = self._registry.get(uow.session, ref)
            result = draw_or_conflict(
                entry, spec.size, spec.seed, spec.mode, spec.fill, epsilon=spec.epsilon
            )
            located = self._prompts.complete(
                uow.session, ref.dataset_id, result.problem_ids, result.slots
            )
        self._start_prefill(ref.dataset_id)
        return encode(located, result, columns)

    def _complete(self, dataset_id: int, result: draws.Draw) -> Located:
        with self._transaction() as uow:
            located = self._prompts.complete(
                uow.session, dataset_id, result.problem_ids, result.slots
            )
        self._start_prefill(dataset_id)
        return located

    def _start_prefill(self, dataset_id: int) -> None:
        """First use of a dataset in this process, or its texts were dropped (an overwrite):
        warm the prompt cache in the background (PromptCache.prefill), so draws of problems
        never served before find their texts."""
        generation = self._prompts.generation(dataset_id)
        with self._prefill_guard:
            if not self._prefill or self._closed.is_set():
                return
            if dataset_id in self._prefilled and self._prefilled[dataset_id] == generation:
                return
            self._prefilled[dataset_id] = generation
        thread = threading.Thread(
            target=self._run_prefill,
            args=(dataset_id, generation),
            name="paced-prefill",
            daemon=True,
        )
        thread.start()

    def _run_prefill(self, dataset_id: int, generation: int | None) -> None:
        try:
            with self._transaction() as uow:
                stored = self._prompts.prefill(
                    uow.session, dataset_id, lambda: self._wait_for_quiet(dataset_id, generation)
                )
            log.info("prompt cache: %d texts of dataset %d prefilled", stored, dataset_id)
        except Exception:  # only a warm-up: draws read what they miss themselves
            log.warning("prompt cache prefill of dataset %d failed", dataset_id, exc_info=True)

    def _wait_for_quiet(self, dataset_id: int, generation: int | None) -> bool:
        """Wait until no request has been in flight for PREFILL_IDLE_GAP_S; False when the
        app shuts down or the dataset's texts were dropped meanwhile (a newer prefill owns
        the refill)."""
        while not self._activity.idle_for(PREFILL_IDLE_GAP_S):
            if self._closed.wait(PREFILL_IDLE_GAP_S / 2):
                return False
            if self._prompts.generation(dataset_id) != generation:
                return False
        return not self._closed.is_set() and self._prompts.generation(dataset_id) == generation

    def close(self) -> None:
        """Stop background work (a prefill stops before its next chunk)."""
        self._closed.set()

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
