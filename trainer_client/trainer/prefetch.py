"""The service off the training step's critical path: fetch the next batch and post outcomes
in background threads, with the same determinism and exactly-once guarantees as doing both
inline.

BatchPrefetcher: while step t trains, batch t+1 is already being requested. What is drawn for
a step depends only on what `fetch(step)` sends (its seed, its draw key) and on the run's
state when the request arrives; the prefetcher changes neither the requests nor their order,
only when they are sent. A draw key derived from the step pins the batch on the service, so
a restarted trainer (or another rank) asking for the same step gets the very same items.

OutcomePoster: outcomes are queued and posted by one thread, in order, one
`post_outcomes` call per submission with the caller's stable Idempotency-Key (the client
splits long lists into chunks keyed f"{key}-{i}"). A submission is acknowledged once the
service answered 2xx, which means committed. Re-posting a submission with its key after a
crash (the trainer does not know which posts landed) is answered as a replay and counted
once. `flush()` and `close()` block until everything queued is acknowledged; a post that
failed for good is re-raised on the caller's thread (by the next post(), flush() or close()).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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


@dataclass(frozen=True)
class _Submission:
    key: str
    outcomes: list[Any]


_STOP = object()


class OutcomePoster:
    """Posts outcomes to `run` from a background thread; see the module docstring.

    `client` is a PacedClient (thread-safe); its retries (same key, same body) cover
    transient failures. `on_ack(key, accepted)` runs on the poster's thread after each
    acknowledged submission (e.g. to record progress for a resume). `max_pending` bounds the
    queue: post() blocks when the service falls that far behind, so memory stays bounded.
    """

    def __init__(
        self,
        client: Any,
        run: str,
        *,
        on_ack: Callable[[str, int], None] | None = None,
        max_pending: int = 64,
    ) -> None:
        self._client = client
        self._run = run
        self._on_ack = on_ack
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._closed = False
        self.acknowledged = 0  # submissions acknowledged so far
        self.accepted = 0  # outcomes the service accepted in them
        self._thread = threading.Thread(target=self._work, name="paced-poster", daemon=True)
        self._thread.start()

    def post(self, outcomes: Iterable[Mapping[str, Any] | Any], key: str) -> None:
        """Queue one submission under its stable Idempotency-Key (derive it from what it is,
        e.g. f"{run}-step-{step}", never from a counter that restarts differently)."""
        self._raise_failure()
        if self._closed:
            raise RuntimeError("the outcome poster is closed")
        self._queue.put(_Submission(key, list(outcomes)))

    def flush(self) -> None:
        """Block until every queued submission is acknowledged; re-raise a failed post."""
        self._queue.join()
        self._raise_failure()

    def close(self) -> None:
        """Flush, then stop the thread. Raises a failed post after stopping."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
        self._raise_failure()

    def __enter__(self) -> OutcomePoster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:  # after a failure nothing more is sent
                    self._send(item)
            finally:
                self._queue.task_done()

    def _send(self, item: _Submission) -> None:
        try:
            result = self._client.post_outcomes(self._run, item.outcomes, idempotency_key=item.key)
            self.acknowledged += 1
            self.accepted += result.accepted
            if self._on_ack is not None:
                self._on_ack(item.key, result.accepted)
        except BaseException as error:  # re-raised on the caller's thread
            self._error = error
