"""The next batch off the training step's critical path, with the same determinism as
drawing it inline.

BatchPrefetcher: while step t trains, batch t+1 is already being requested. What is drawn for
a step depends only on what `fetch(step)` sends (its seed, its draw key) and on the run's
state when the request arrives; the prefetcher changes neither the requests nor their order,
only when they are sent. A draw key derived from the step pins the batch on the service, so
a restarted trainer (or another rank) asking for the same step gets the very same items.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")


class BatchPrefetcher(Generic[T]):
    """`get(step)` returns `fetch(step)`, having requested it ahead while the caller trained.

    Steps are expected in increasing order; asking for a step that was not prefetched (the
    first one, or after a jump) fetches it on the spot. `depth` batches are kept in flight.
    `ahead(step)` says whether `step` may be fetched early: False for a step whose draw must
    see something the caller does first (outcomes it posts at that step), so it is fetched
    only when asked for.
    """

    def __init__(
        self,
        fetch: Callable[[int], T],
        *,
        depth: int = 1,
        ahead: Callable[[int], bool] | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self._fetch = fetch
        self._depth = depth
        self._ahead = ahead or (lambda _step: True)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paced-prefetch")
        self._pending: dict[int, Future[T]] = {}
        self._closed = False

    def get(self, step: int) -> T:
        if self._closed:
            raise RuntimeError("the prefetcher is closed")
        future = self._pending.pop(step, None)
        # Older prefetches (a jump forward) are no longer wanted; a running one finishes.
        for stale in [s for s in self._pending if s < step]:
            self._pending.pop(stale).cancel()
        if future is None:
            future = self._pool.submit(self._fetch, step)
        # A failed fetch raises here, on the caller's thread, before anything is fetched
        # ahead of it: what the caller does about the failure comes first.
        result = future.result()
        for ahead in range(step + 1, step + 1 + self._depth):
            if not self._ahead(ahead):
                break  # nothing past a step that must wait is fetched early either
            if ahead not in self._pending:
                self._pending[ahead] = self._pool.submit(self._fetch, ahead)
        return result

    def close(self) -> None:
        """Stop prefetching; requests in flight are finished, queued ones dropped."""
        self._closed = True
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> BatchPrefetcher[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
