"""Framework-free building blocks shared by every integration, on the trainer half's rules.

`PacedDraws` (trainer/draws.py) turns "the i-th batch of this training run" into one PACED
draw that every rank (and every retry, and a resumed run) gets identically: the draw is
pinned under the key f"{key_prefix}:{i}" and seeded by draws.batch_seed(seed, i), the seed
the bundled recipes draw batch i with. By default it also
- fills the batch to exactly `size` (unseen problems, then any), since RL steps need `size`;
- leases what it drew and skips leased problems, so a dataloader that prefetches batch i+1
  before batch i's outcomes are posted does not serve the same problems twice.

`post_group_outcomes` posts graded rollouts grouped by problem under the one idempotency-key
rule (trainer/outcomes.py: per step, rank and content): an HTTP retry or a duplicated call
counts once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from trainer_client import models
from trainer_client._batch_format import BatchItem
from trainer_client.client import PacedClient
from trainer_client.trainer.draws import FILL, PacedDraws, as_client
from trainer_client.trainer.outcomes import group_outcomes, outcome_key, post_outcomes

__all__ = [
    "FILL",
    "PacedDraws",
    "SizedDraws",
    "as_client",
    "distributed_rank",
    "group_outcomes",
    "loss_scales",
    "outcome_key",
    "post_group_outcomes",
]


def distributed_rank() -> int:
    """This process's rank under torch.distributed / torchrun, else 0."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank()
    except ImportError:
        pass
    return int(os.environ.get("RANK", "0"))


class SizedDraws:
    """Draw i of whatever size the framework asks for (slime per call, NeMo-RL per step):
    one pinned sequence per size, under f"{key_prefix}:n{size}:{i}" (a draw key pins one
    request body, size included). `options` are PacedDraws' (seed, mode, lease_ttl_s...)."""

    def __init__(self, client: PacedClient, run: str, *, key_prefix: str, **options: Any) -> None:
        self.client, self.run, self.key_prefix = client, run, key_prefix
        self.options = {"fill": FILL, **options}
        self._by_size: dict[int, PacedDraws] = {}

    def draw(self, size: int, index: int) -> models.Batch:
        if size not in self._by_size:
            prefix = f"{self.key_prefix}:n{size}"
            self._by_size[size] = PacedDraws(
                self.client, self.run, size, key_prefix=prefix, **self.options
            )
        return self._by_size[size].draw(index)


def loss_scales(items: Sequence[BatchItem]) -> dict[str, float]:
    """problem id -> loss_weight / mean loss_weight over the batch (mean 1 over the batch).

    With a proportional draw every drawn item has loss weight 1 (and fill items 0); with a
    uniform one it is w / mean(w). A batch whose weights are all 0 (nothing estimated yet)
    gets 1 everywhere: plain training until the curriculum knows something."""
    weights = [item.loss_weight for item in items]
    mean = sum(weights) / len(weights) if weights else 0.0
    if mean <= 0:
        return {item.problem_id: 1.0 for item in items}
    return {item.problem_id: item.loss_weight / mean for item in items}


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
    """Post graded rollouts as one outcome per problem, under the trainer half's key rule
    (this process's rank unless given); returns what was posted."""
    outcomes = group_outcomes(problem_ids, passed, step)
    rank = distributed_rank() if rank is None else rank
    post_outcomes(client, run, outcomes, step=step, rank=rank, key_prefix=key_prefix)
    return outcomes
