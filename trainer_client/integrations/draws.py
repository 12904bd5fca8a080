"""Framework-free building blocks shared by every integration.

`PacedDraws` turns "the i-th batch of this training run" into one PACED draw that every
rank (and every retry, and a resumed run) gets identically: the draw is pinned under the key
f"{key_prefix}:{i}" and seeded from (seed, i). By default it also
- fills the batch to exactly `size` (unseen problems, then any), since RL steps need `size`;
- leases what it drew and skips leased problems, so a dataloader that prefetches batch i+1
  before batch i's outcomes are posted does not serve the same problems twice.

`post_group_outcomes` posts graded rollouts grouped by problem, with an idempotency key per
(step, rank, content): an HTTP retry or a duplicated call counts once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from trainer_client import models
from trainer_client.client import PacedClient

FILL = "unseen_then_uniform"
SEED_STRIDE = 1_000_003  # seeds of draw i: seed * stride + i (distinct for i < stride)


def distributed_rank() -> int:
    """This process's rank under torch.distributed / torchrun, else 0."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank()
    except ImportError:
        pass
    return int(os.environ.get("RANK", "0"))


def as_client(client: PacedClient | str) -> PacedClient:
    return PacedClient(client) if isinstance(client, str) else client


class PacedDraws:
    """The i-th PACED batch of a training run, the same on every rank and every retry."""

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
    ) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.client = as_client(client)
        self.run = run
        self.size = size
        self.seed = seed
        self.mode = mode
        self.fill = fill
        self.skip_leased = skip_leased
        self.lease_ttl_s = lease_ttl_s
        # One prefix per training run: ranks share it, a resumed run reuses it.
        self.key_prefix = key_prefix or f"{run}/seed{seed}"
        self.history: list[list[str]] = []  # problem ids of every draw this process made

    def seed_for(self, index: int) -> int:
        return (self.seed * SEED_STRIDE + index) % 2**63

    def draw(self, index: int) -> models.Batch:
        lease = None
        if self.lease_ttl_s is not None:
            lease = {"claimer": self.key_prefix, "ttl_s": self.lease_ttl_s}
        batch = self.client.batch(
            self.run,
            self.size,
            seed=self.seed_for(index),
            mode=self.mode,  # type: ignore[arg-type]
            fill=self.fill,  # type: ignore[arg-type]
            draw_key=f"{self.key_prefix}:{index}",
            lease=lease,
            skip_leased=self.skip_leased or None,
        )
        self.history.append([item.problem_id for item in batch.items])
        return batch


def loss_scales(items: Sequence[models.BatchItem]) -> dict[str, float]:
    """problem id -> loss_weight / mean loss_weight over the batch (mean 1 over the batch).

    With a proportional draw every drawn item has loss weight 1 (and fill items 0); with a
    uniform one it is w / mean(w). A batch whose weights are all 0 (nothing estimated yet)
    gets 1 everywhere: plain training until the curriculum knows something."""
    weights = [item.loss_weight for item in items]
    mean = sum(weights) / len(weights) if weights else 0.0
    if mean <= 0:
        return {item.problem_id: 1.0 for item in items}
    return {item.problem_id: item.loss_weight / mean for item in items}


def group_outcomes(
    problem_ids: Iterable[str], passed: Iterable[bool], step: int | None
) -> list[dict[str, Any]]:
    """One outcome per problem (first-appearance order): attempts = its rollouts, successes
    = how many passed."""
    counts: dict[str, list[int]] = {}
    for pid, ok in zip(problem_ids, passed, strict=True):
        tally = counts.setdefault(str(pid), [0, 0])
        tally[0] += 1
        tally[1] += int(bool(ok))
    return [
        {"problem_id": pid, "attempts": n, "successes": k, "step": step}
        for pid, (n, k) in counts.items()
    ]


def outcome_key(prefix: str, step: int | None, rank: int, outcomes: list[Mapping]) -> str:
    """Per (step, rank) and content: the same call again (a retry, a duplicate) replays,
    while different rollouts at the same step (a resumed run re-doing a step) count."""
    digest = hashlib.sha256(orjson.dumps(outcomes, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{prefix}:step{step}:rank{rank}:{digest[:16]}"


def post_group_outcomes(
    client: PacedClient,
    run: str,
    problem_ids: Sequence[str],
    passed: Sequence[bool],
    step: int | None,
    *,
    key_prefix: str,
    rank: int | None = None,
) -> list[dict[str, Any]]:
    outcomes = group_outcomes(problem_ids, passed, step)
    if outcomes:
        rank = distributed_rank() if rank is None else rank
        key = outcome_key(key_prefix, step, rank, outcomes)
        client.post_outcomes(run, outcomes, idempotency_key=key)
    return outcomes
