"""Drawing a training batch for each scheme, and surviving a service with nothing eligible.

Schemes (what is compared in the paper):
- paced:       proportional batches (drawn ∝ w(p)), loss weight 1.
- paced-loss:  uniform batches, loss weight w / mean w from the service.
- hard-filter: uniform batches with every item at p ∈ {0, 1} or unknown dropped, refilled
               from further uniform draws until full or the run is exhausted; unweighted.
- uniform:     uniform batches, loss weight 1 (pass rates ignored).

When the service answers 409 (no eligible problem), the caller's `refresh` re-estimates part
of the pool and the draw is tried once more; if it still fails, a uniform batch with loss
weight 1 is used, and as a last resort a uniform draw from the local pool (the run has no
outcomes at all). Every such event is counted, never hidden.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from trainer_client import models
from trainer_client.client import PacedClient
from trainer_client.errors import Conflict
from trainer_client.limits import DEFAULT_LIMITS
from trainer_client.trainer.seeds import derive_seed

MAX_REFILL_DRAWS = 16


@dataclass(frozen=True)
class TrainItem:
    problem_id: str
    prompt: str
    answer: str | None
    pass_rate: float | None
    loss_weight: float


@dataclass
class DrawnBatch:
    items: list[TrainItem]
    conflicts: int = 0  # 409 answers met while drawing this batch
    fallback: str | None = None  # None, "uniform" (service) or "local" (pool)

    @property
    def trained(self) -> list[TrainItem]:
        """The items that are trained on: a zero loss weight adds nothing to the loss."""
        return [item for item in self.items if item.loss_weight > 0]


def _item(raw: models.BatchItem, loss_weight: float) -> TrainItem:
    return TrainItem(raw.problem_id, raw.prompt, raw.answer, raw.pass_rate, float(loss_weight))


def _is_frontier(pass_rate: float | None) -> bool:
    return pass_rate is not None and 0.0 < pass_rate < 1.0


class BatchDrawer:
    def __init__(self, client: PacedClient, run: str, scheme: str, pool: Sequence[Any]):
        self.client = client
        self.run = run
        self.scheme = scheme
        self.pool = list(pool)
        self._max_request: int | None = None

    def max_request(self) -> int:
        """The largest batch the service accepts: what it advertises (asked once), else the
        default limit (a client without limits(), e.g. a test double)."""
        if self._max_request is None:
            limits = getattr(self.client, "limits", None)
            self._max_request = (limits() if limits else DEFAULT_LIMITS).max_batch_size
        return self._max_request

    def _request(
        self, size: int, seed: int, mode: Literal["proportional", "uniform"]
    ) -> models.Batch:
        return self.client.batch(self.run, size, seed=seed, mode=mode)

    def _scheme_draw(self, size: int, seed: int) -> list[TrainItem]:
        """The scheme's own batch; raises Conflict when the service has nothing eligible."""
        if self.scheme == "paced":
            batch = self._request(size, seed, "proportional")
            return [_item(raw, raw.loss_weight) for raw in batch.items]
        if self.scheme == "paced-loss":
            batch = self._request(size, seed, "uniform")
            return [_item(raw, raw.loss_weight) for raw in batch.items]
        if self.scheme == "uniform":
            batch = self._request(size, seed, "uniform")
            return [_item(raw, 1.0) for raw in batch.items]
        if self.scheme == "hard-filter":
            return self._hard_filter(size, seed)
        raise ValueError(f"unknown scheme {self.scheme!r}")

    def _hard_filter(self, size: int, seed: int) -> list[TrainItem]:
        kept: list[TrainItem] = []
        seen: set[str] = set()
        request = size
        for attempt in range(MAX_REFILL_DRAWS):
            batch = self._request(request, derive_seed(seed, "refill", attempt), "uniform")
            for raw in batch.items:
                if raw.problem_id in seen:
                    continue
                seen.add(raw.problem_id)
                if _is_frontier(raw.pass_rate) and len(kept) < size:
                    kept.append(_item(raw, 1.0))
            if len(kept) >= size or len(seen) >= batch.available:
                break
            # The next draw asks for everything (up to the request cap): one more call then
            # sees every problem, instead of many small rounds when the frontier is sparse.
            request = min(self.max_request(), batch.available)
        if not kept:
            raise Conflict(409, "no problem with 0 < p < 1 to keep", "POST", "hard-filter")
        return kept

    def draw(self, size: int, seed: int, refresh: Callable[[], object]) -> DrawnBatch:
        drawn = DrawnBatch(items=[])
        for attempt in range(2):
            try:
                drawn.items = self._scheme_draw(size, seed)
                return drawn
            except Conflict:
                drawn.conflicts += 1
                if attempt == 0:
                    refresh()
        # Still nothing eligible after a refresh: train on a uniform batch, unweighted.
        try:
            batch = self._request(size, derive_seed(seed, "fallback"), "uniform")
            drawn.items = [_item(raw, 1.0) for raw in batch.items]
            drawn.fallback = "uniform"
        except Conflict:
            drawn.conflicts += 1
            rng = random.Random(derive_seed(seed, "local"))
            picked = rng.sample(self.pool, min(size, len(self.pool)))
            drawn.items = [TrainItem(p.id, p.prompt, p.answer, None, 1.0) for p in picked]
            drawn.fallback = "local"
        return drawn
