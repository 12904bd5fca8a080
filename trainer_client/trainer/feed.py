"""The feed: every step's batch on every rank, the run's difficulty after it, and refreshes.

Rank 0 draws batch i (draws.BatchDrawer) and broadcasts it; a 409 re-estimation on the way
runs on every rank too (rollouts are split over the ranks). With `prefetch`, rank 0 keeps
the service off the step's critical path: step t+1's batch is drawn while step t trains,
the difficulty of step t is read while it trains, and the rollout queue of a scheduled
refresh is read one step ahead. None of this changes what is drawn: nothing is posted
between two draws except at refresh steps, which are never drawn ahead (the refresh's
outcomes must be in first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from trainer_client.client import PacedClient
from trainer_client.models import RolloutQueue
from trainer_client.trainer.accounting import ClientClock, Counters
from trainer_client.trainer.draws import BatchDrawer, DrawnBatch
from trainer_client.trainer.prefetch import BatchPrefetcher
from trainer_client.trainer.ranks import Ranks

# What rank 0 broadcasts instead of a batch when a 409 makes it re-estimate first.
_REFRESH = "refresh"
Estimate = Callable[[Sequence[Any], int], object]  # (items, step): roll out, grade, post


class _RefreshFirst(Exception):
    """A batch drawn ahead met a 409: it is drawn again on the training thread, which
    re-estimates first (rollouts are not run from the prefetch thread)."""


def _refresh_first() -> None:
    raise _RefreshFirst


def read_difficulty(client: PacedClient, run: str) -> dict[str, Any]:
    """The run's zones and effective problem count, as the step records keep them."""
    found = client.difficulty(run)
    return {"zones": found.zones.model_dump(), "effective_problems": found.effective_problems}


class BatchFeed:
    """`batch(step)` on every rank; `refresh(step)` re-rolls the head of the rollout queue
    (`refresh_size` problems every `refresh_every` steps, through `estimate`)."""

    def __init__(
        self,
        drawer: BatchDrawer,
        client: PacedClient,
        run: str,
        *,
        steps: int,
        ranks: Ranks | None = None,
        clock: ClientClock | None = None,
        counters: Counters | None = None,
        estimate: Estimate | None = None,
        refresh_every: int = 0,
        refresh_size: int = 0,
        prefetch: bool = False,
        difficulty: bool = False,
    ) -> None:
        self.drawer, self.client, self.run, self.steps = drawer, client, run, steps
        self.ranks, self.clock = ranks or Ranks(), clock or ClientClock()
        self.counters = counters or Counters()
        self.estimate, self.refresh_every, self.refresh_size = estimate, refresh_every, refresh_size
        self.reads_difficulty = difficulty and self.ranks.is_main
        ahead = prefetch and self.ranks.is_main
        self.ahead = (
            BatchPrefetcher(self._draw_ahead, ahead=self._may_draw_ahead) if ahead else None
        )
        self._reader = ThreadPoolExecutor(1, "paced-difficulty") if ahead else None
        self._step_difficulty: Future[dict[str, Any]] | None = None
        self._queue_ahead: tuple[int, Future[RolloutQueue]] | None = None

    def refreshes_at(self, step: int) -> bool:
        return (
            self.estimate is not None
            and step > 0
            and self.refresh_every > 0
            and step % self.refresh_every == 0
            and self.refresh_size > 0
        )

    def batch(self, step: int) -> DrawnBatch:
        """Rank 0 draws the step's batch (seeded by (seed, step)) and every rank gets it."""
        if not self.ranks.is_main:
            while (message := self.ranks.broadcast(None)) == _REFRESH:
                self.refresh(step)
            return message  # type: ignore[return-value]

        def refresh_everywhere() -> None:
            self.ranks.broadcast(_REFRESH)
            self.refresh(step)

        drawn = None
        if self.ahead is not None:
            try:
                with self.clock.waiting():
                    drawn = self.ahead.get(step)
            except _RefreshFirst:
                drawn = None  # drawn again just below, where the refresh can run
        if drawn is None:
            refresh = refresh_everywhere if self.estimate is not None else None
            drawn = self.drawer.draw(step, refresh=refresh)
        if self._reader is not None:
            self._step_difficulty = self._reader.submit(self.difficulty)
            if self.refreshes_at(step + 1):  # nothing is posted before that refresh asks
                self._queue_ahead = (step + 1, self._reader.submit(self._rollout_queue))
        return self.ranks.broadcast(drawn)

    def refresh(self, step: int) -> int:
        """Re-roll the head of the rollout queue (unseen, stale, uncertain) at this step."""
        if self.refresh_size == 0 or self.estimate is None:
            return 0
        queue = self.ranks.from_main(lambda: self._scheduled_queue(step))
        self.estimate(queue.items, step)
        self.counters.refreshes += 1
        return len(queue.items)

    def difficulty(self) -> dict[str, Any]:
        return read_difficulty(self.client, self.run)

    def difficulty_after_step(self) -> dict[str, Any] | None:
        """The run's difficulty after this step's draw (read while the step trained);
        None where it is not read (ranks other than 0, a feed without it)."""
        if not self.reads_difficulty:
            return None
        future, self._step_difficulty = self._step_difficulty, None
        if future is None:
            return self.difficulty()
        with self.clock.waiting():
            return future.result()

    def close(self) -> None:
        """Stop the background threads (requests in flight finish)."""
        if self.ahead is not None:
            self.ahead.close()
        if self._reader is not None:
            self._reader.shutdown(wait=True)

    def _draw_ahead(self, step: int) -> DrawnBatch:
        return self.drawer.draw(step, refresh=_refresh_first)

    def _may_draw_ahead(self, step: int) -> bool:
        return step < self.steps and not self.refreshes_at(step)

    def _rollout_queue(self) -> RolloutQueue:
        return self.client.rollout_queue(self.run, self.refresh_size)

    def _scheduled_queue(self, step: int) -> RolloutQueue:
        """The queue read ahead for this step's scheduled refresh, else read now."""
        ahead, self._queue_ahead = self._queue_ahead, None
        if ahead is None or ahead[0] != step:
            return self._rollout_queue()
        with self.clock.waiting():
            return ahead[1].result()
