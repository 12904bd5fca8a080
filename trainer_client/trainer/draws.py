"""Batch i of a run: the one way the trainer half draws, for the recipes and the integrations.

`PacedDraws.draw(i)` asks the service for batch i, seeded by `batch_seed(seed, i)`; pinned
(the integrations' default) under the key f"{key_prefix}:{i}", so every rank, retry and
resumed run gets the very same problems. `BatchDrawer` adds the recipes' schemes on top of
it (what is compared in the paper):
- paced:       proportional batches (drawn ∝ w(p)), loss weight 1.
- paced-loss:  uniform batches, loss weight w / mean w from the service.
- hard-filter: uniform batches with every item at p ∈ {0, 1} or unknown dropped, refilled
               from further uniform draws until full or the run is exhausted; unweighted.
- uniform:     uniform batches, loss weight 1 (pass rates ignored).
- local:       uniform from the local pool, loss weight 1, no service call (a baseline that
               needs no pass rates).

When the service answers 409 (no eligible problem), the caller's `refresh` re-estimates part
of the pool and the draw is tried once more; if it still fails, a uniform batch with loss
weight 1 is used, and as a last resort a uniform draw from the local pool (the run has no
outcomes at all). Every such event is counted, never hidden. Without `fallback` a 409 gives
an empty batch (a step with nothing to train on).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from trainer_client import models
from trainer_client._batch_format import BatchItem
from trainer_client.client import PacedClient
from trainer_client.errors import Conflict
from trainer_client.limits import DEFAULT_LIMITS
from trainer_client.trainer.seeds import derive_seed

Mode = Literal["proportional", "uniform"]
Fill = Literal["none", "unseen", "unseen_then_uniform"]
FILL: Fill = "unseen_then_uniform"
MAX_REFILL_DRAWS = 16
_MODES: dict[str, Mode] = {"paced": "proportional"}  # every other scheme draws uniformly
# The recipes' draws: no key (rank 0 draws and broadcasts), no fill, no lease.
_PLAIN: dict[str, Any] = {"fill": None, "skip_leased": False, "lease_ttl_s": None, "pinned": False}


def batch_seed(seed: int, index: int) -> int:
    """The seed of batch `index` of a run seeded `seed` (a function of both alone, so a
    resumed run asks for the batch an uninterrupted one would have)."""
    return derive_seed(seed, index, "batch")


def as_client(client: PacedClient | str) -> PacedClient:
    return PacedClient(client) if isinstance(client, str) else client


class PacedDraws:
    """The i-th PACED batch of a training run, the same on every rank and every retry.

    By default it fills the batch to exactly `size` (unseen problems, then any: RL steps need
    `size`) and leases what it drew, skipping leased problems, so a dataloader that prefetches
    batch i+1 before batch i's outcomes are posted does not serve the same problems twice.
    `pinned=False` sends no draw key (the recipes: rank 0 draws and broadcasts)."""

    def __init__(
        self,
        client: PacedClient | str,
        run: str,
        size: int,
        *,
        seed: int = 0,
        mode: str = "proportional",
        fill: str | None = FILL,
        skip_leased: bool = True,
        lease_ttl_s: float | None = 600.0,
        key_prefix: str | None = None,
        pinned: bool = True,
    ) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.client = as_client(client)
        self.run, self.size, self.seed, self.mode = run, size, seed, mode
        self.fill, self.skip_leased, self.lease_ttl_s = fill, skip_leased, lease_ttl_s
        # One prefix per training run: ranks share it, a resumed run reuses it.
        self.key_prefix = key_prefix or f"{run}/seed{seed}"
        self.pinned = pinned
        self.history: list[list[str]] = []  # problem ids of every draw this process made

    def seed_for(self, index: int) -> int:
        return batch_seed(self.seed, index)

    def draw(self, index: int) -> models.Batch:
        lease = None
        if self.lease_ttl_s is not None:
            lease = {"claimer": self.key_prefix, "ttl_s": self.lease_ttl_s}
        batch = self.client.batch(
            self.run,
            self.size,
            seed=self.seed_for(index),
            # Checked by the client (a ValueError naming the field), like every request.
            mode=cast(Mode, self.mode),
            fill=cast(Fill | None, self.fill),
            draw_key=f"{self.key_prefix}:{index}" if self.pinned else None,
            lease=lease,
            skip_leased=self.skip_leased or None,
        )
        self.history.append([item.problem_id for item in batch.items])
        return batch

    def request(self, size: int, seed: int, mode: Mode) -> models.Batch:
        """A plain draw (no key, fill or lease): the schemes' refills and fallbacks."""
        return self.client.batch(self.run, size, seed=seed, mode=mode)


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


def _item(raw: BatchItem, loss_weight: float) -> TrainItem:
    return TrainItem(raw.problem_id, raw.prompt, raw.answer, raw.pass_rate, float(loss_weight))


def _is_frontier(pass_rate: float | None) -> bool:
    return pass_rate is not None and 0.0 < pass_rate < 1.0


class BatchDrawer:
    """Batch i under a scheme; `pool` items have .id, .prompt and .answer."""

    def __init__(
        self,
        client: PacedClient,
        run: str,
        scheme: str,
        pool: Sequence[Any],
        *,
        size: int,
        seed: int,
        fallback: bool = True,
    ) -> None:
        mode = _MODES.get(scheme, "uniform")
        self.draws = PacedDraws(client, run, size, seed=seed, mode=mode, **_PLAIN)
        self.client, self.scheme, self.pool, self.fallback = client, scheme, list(pool), fallback
        self._max_request: int | None = None

    def max_request(self) -> int:
        """The largest batch the service accepts: what it advertises (asked once), else the
        default limit (a client without limits(), e.g. a test double)."""
        if self._max_request is None:
            limits = getattr(self.client, "limits", None)
            self._max_request = (limits() if limits else DEFAULT_LIMITS).max_batch_size
        return self._max_request

    def draw(self, index: int, refresh: Callable[[], object] | None = None) -> DrawnBatch:
        seed = self.draws.seed_for(index)
        drawn = DrawnBatch(items=[])
        for attempt in range(2):
            try:
                drawn.items = self._scheme_draw(index, seed)
                return drawn
            except Conflict:
                drawn.conflicts += 1
                if refresh is None or attempt:
                    break
                refresh()
        if self.fallback:
            self._fall_back(drawn, seed)
        return drawn

    def _scheme_draw(self, index: int, seed: int) -> list[TrainItem]:
        """The scheme's own batch; raises Conflict when the service has nothing eligible."""
        if self.scheme in ("paced", "paced-loss"):
            return [_item(raw, raw.loss_weight) for raw in self.draws.draw(index).items]
        if self.scheme == "uniform":
            return [_item(raw, 1.0) for raw in self.draws.draw(index).items]
        if self.scheme == "hard-filter":
            return self._hard_filter(seed)
        if self.scheme == "local":
            return self._local(derive_seed(self.draws.seed, index, "uniform-batch"))
        raise ValueError(f"unknown scheme {self.scheme!r}")

    def _hard_filter(self, seed: int) -> list[TrainItem]:
        size = self.draws.size
        kept: list[TrainItem] = []
        seen: set[str] = set()
        request = size
        for attempt in range(MAX_REFILL_DRAWS):
            batch = self.draws.request(request, derive_seed(seed, "refill", attempt), "uniform")
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

    def _fall_back(self, drawn: DrawnBatch, seed: int) -> None:
        """Still nothing eligible after a refresh: train on a uniform batch, unweighted."""
        try:
            batch = self.draws.request(self.draws.size, derive_seed(seed, "fallback"), "uniform")
            drawn.items = [_item(raw, 1.0) for raw in batch.items]
            drawn.fallback = "uniform"
        except Conflict:
            drawn.conflicts += 1
            drawn.items = self._local(derive_seed(seed, "local"))
            drawn.fallback = "local"

    def _local(self, seed: int) -> list[TrainItem]:
        picked = random.Random(seed).sample(self.pool, min(self.draws.size, len(self.pool)))
        return [TrainItem(p.id, p.prompt, p.answer, None, 1.0) for p in picked]
