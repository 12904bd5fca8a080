"""Batch draws for several consumers: excluded problems and a fill policy, over
SamplingIndex.sample (pure: no I/O).

Excluding a set E: the index draws successively without replacement (first appearances of
an i.i.d. weighted sequence); dropping the members of E from such a draw leaves a
successive draw from the distribution restricted to the rest. So asking the index for
size + |E| and filtering is exact, and stays deterministic given the rng and the index.

Fill: a weighted draw returns fewer than `size` problems when fewer have positive weight
(early in a run, or when most problems are mastered or intractable) — a GRPO step needs
exactly `size`. The fill tops the batch up with problems picked uniformly at random among
the unseen ones, then (policy "unseen_then_uniform") among all the rest. Filled problems
were not drawn by weight (and had weight 0, or the weighted draw would have taken them), so
their loss weight is 0: they earn the curriculum outcomes, not gradient weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.curriculum.index import SamplingIndex

FillPolicy = Literal["none", "unseen", "unseen_then_uniform"]
Mode = Literal["proportional", "uniform"]
SOURCES = ("drawn", "fill_unseen", "fill_uniform")  # what BatchItem.source can say


@dataclass(frozen=True)
class Draw:
    problem_ids: np.ndarray  # int64, distinct: the weighted draw first, then the fill
    weights: np.ndarray
    loss_weights: np.ndarray
    pass_rates: np.ndarray  # NaN for unseen
    available: int  # problems eligible for the mode, excluded ones not counted
    sources: np.ndarray | None  # int8 codes into SOURCES; None when no fill was asked
    slots: np.ndarray | None = None  # the index's slots of the problems, when known


def _eligible(index: SamplingIndex, ids: np.ndarray, mode: str) -> np.ndarray:
    stats = index.stats_of(ids)
    if mode == "proportional":
        return stats["weight"] > 0
    return np.ones(len(ids), bool) if index.estimator.is_posterior else stats["attempts"] > 0


def known(index: SamplingIndex, ids: np.ndarray | None) -> np.ndarray:
    """The ids the index knows, distinct (leases may name problems added since a sync)."""
    if ids is None or len(ids) == 0:
        return np.empty(0, dtype=np.int64)
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    return ids[index.slots_of(ids) >= 0]


def draw(
    index: SamplingIndex,
    size: int,
    rng: np.random.Generator,
    mode: Mode,
    *,
    fill: FillPolicy = "none",
    exclude: np.ndarray | None = None,
) -> Draw:
    """Up to `size` distinct problems, none of them in `exclude` (see the module docstring)."""
    excluded = known(index, exclude)
    result = index.sample(size + len(excluded), rng, mode)
    if fill == "none" and not len(excluded):  # the plain batch (the hot path): as drawn
        return Draw(
            result.problem_ids,
            result.weights,
            result.loss_weights,
            result.pass_rates,
            result.available,
            None,
            result.slots,
        )
    keep = ~np.isin(result.problem_ids, excluded)
    picked = np.flatnonzero(keep)[:size]
    available = result.available
    if len(excluded):
        available -= int(np.count_nonzero(_eligible(index, excluded, mode)))
    ids = result.problem_ids[picked]
    weights = result.weights[picked]
    loss = result.loss_weights[picked]
    rates = result.pass_rates[picked]
    if fill == "none":
        return Draw(ids, weights, loss, rates, available, None)

    sources = [np.zeros(len(ids), dtype=np.int8)]
    taken = np.concatenate([ids, excluded])
    parts = [ids]
    for code, pool in ((1, "unseen"), (2, "uniform")):
        need = size - sum(len(p) for p in parts)
        if need <= 0 or (pool == "uniform" and fill != "unseen_then_uniform"):
            break
        candidates = index.unseen_ids() if pool == "unseen" else index.problem_ids
        candidates = candidates[~np.isin(candidates, taken)]
        chosen = candidates[
            rng.choice(len(candidates), size=min(need, len(candidates)), replace=False)
        ]
        parts.append(chosen)
        sources.append(np.full(len(chosen), code, dtype=np.int8))
        taken = np.concatenate([taken, chosen])
    filled = np.concatenate(parts[1:]) if len(parts) > 1 else np.empty(0, dtype=np.int64)
    stats = index.stats_of(filled)
    return Draw(
        problem_ids=np.concatenate([ids, filled]),
        weights=np.concatenate([weights, stats["weight"]]),
        loss_weights=np.concatenate([loss, np.zeros(len(filled))]),
        pass_rates=np.concatenate([rates, stats["pass_rate"]]),
        available=available,
        sources=np.concatenate(sources),
    )


def queue_excluding(
    index: SamplingIndex,
    limit: int,
    current_step: int,
    stale_after: int,
    exclude: np.ndarray | None,
) -> list[tuple[int, str]]:
    """The rollout queue (unseen, stale, uncertain) without the excluded problems."""
    excluded = known(index, exclude)
    queue = index.rollout_queue(limit + len(excluded), current_step, stale_after)
    if len(excluded):
        skip = set(excluded.tolist())
        queue = [entry for entry in queue if entry[0] not in skip]
    return queue[:limit]
