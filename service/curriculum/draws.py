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

Exploration (opt-in, curriculum/exploration.py): mode "thompson" draws successively ∝ each
problem's weight at one draw of its posterior instead of ∝ E[w]; `epsilon` takes that share
of the batch uniformly from the problems the weights leave out (weight 0, or no evidence),
source "explored", loss weight 0. Either one goes through _exploring_draw; without them a
draw is exactly what it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from service.curriculum.exploration import exploration_count, explore_slots, thompson_weights
from service.curriculum.index import SamplingIndex

FillPolicy = Literal["none", "unseen", "unseen_then_uniform"]
Mode = Literal["proportional", "uniform", "thompson"]
SOURCES = ("drawn", "fill_unseen", "fill_uniform")  # what BatchItem.source can say
EXPLORED = "explored"  # ... and, in a batch with an epsilon share, this too
SOURCE_NAMES = (*SOURCES, EXPLORED)  # Draw.sources codes index this


@dataclass(frozen=True)
class Draw:
    problem_ids: np.ndarray  # int64, distinct: the weighted draw first, then the fill
    weights: np.ndarray
    loss_weights: np.ndarray
    pass_rates: np.ndarray  # NaN for unseen
    available: int  # problems eligible for the mode, excluded ones not counted
    sources: np.ndarray | None  # int8 codes into SOURCE_NAMES; None: no fill, no exploration
    slots: np.ndarray | None = None  # the index's slots of the problems, when known
    exploring: bool = False  # an epsilon share was asked for: "explored" is a source too


def source_names(result: Draw) -> list[str]:
    """Each item's source by name (the draw must have sources)."""
    assert result.sources is not None
    return [SOURCE_NAMES[code] for code in result.sources.tolist()]


def source_counts(result: Draw) -> dict[str, int]:
    """How many items came from each source: the fill's three, and "explored" when the
    batch asked for an epsilon share (a batch without one reads as it always did)."""
    names = source_names(result)
    shown = SOURCE_NAMES if result.exploring else SOURCES
    return {name: names.count(name) for name in shown}


def _eligible(index: SamplingIndex, ids: np.ndarray, mode: str) -> np.ndarray:
    stats = index.stats_of(ids)
    if mode == "proportional":
        return stats["weight"] > 0
    return np.ones(len(ids), bool) if index.estimator.is_posterior else stats["attempts"] > 0


def _available(index: SamplingIndex, drawn: int, excluded: np.ndarray, mode: str) -> int:
    """The sample's count of eligible problems less the excluded ones that were eligible."""
    if not len(excluded):
        return drawn
    return drawn - int(np.count_nonzero(_eligible(index, excluded, mode)))


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
    epsilon: float = 0.0,
) -> Draw:
    """Up to `size` distinct problems, none of them in `exclude` (see the module docstring)."""
    excluded = known(index, exclude)
    if mode == "thompson" or epsilon > 0:
        return _exploring_draw(index, size, rng, mode, fill, excluded, epsilon)
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
    available = _available(index, result.available, excluded, mode)
    ids = result.problem_ids[picked]
    weights = result.weights[picked]
    loss = result.loss_weights[picked]
    rates = result.pass_rates[picked]
    if fill == "none":
        return Draw(ids, weights, loss, rates, available, None)
    sources = np.zeros(len(ids), dtype=np.int8)
    return _with_fill(
        index, Draw(ids, weights, loss, rates, available, sources), size, rng, fill, excluded
    )


def _with_fill(
    index: SamplingIndex,
    drawn: Draw,
    size: int,
    rng: np.random.Generator,
    fill: FillPolicy,
    excluded: np.ndarray,
) -> Draw:
    """The draw topped up to `size` by the fill policy (module docstring)."""
    assert drawn.sources is not None
    ids = drawn.problem_ids
    sources = [drawn.sources]
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
        weights=np.concatenate([drawn.weights, stats["weight"]]),
        loss_weights=np.concatenate([drawn.loss_weights, np.zeros(len(filled))]),
        pass_rates=np.concatenate([drawn.pass_rates, stats["pass_rate"]]),
        available=drawn.available,
        sources=np.concatenate(sources),
        exploring=drawn.exploring,
    )


def _exploring_draw(
    index: SamplingIndex,
    size: int,
    rng: np.random.Generator,
    mode: Mode,
    fill: FillPolicy,
    excluded: np.ndarray,
    epsilon: float,
) -> Draw:
    """draw() for a Thompson mode and/or an epsilon share: round(epsilon * size) problems (at
    most what the pool holds) uniformly from those with weight 0 or no evidence, the rest by
    `mode`; then the fill. `excluded`: known(index, exclude). Deterministic given the rng and
    the index, as every draw."""
    excluded_slots = index.slots_of(excluded)
    arrays = index.arrays()
    left_out = (arrays.weights <= 0) | (arrays.attempts <= 0)
    left_out[excluded_slots] = False
    explore = exploration_count(size, epsilon, int(np.count_nonzero(left_out)))
    take = size - explore
    if mode == "thompson":
        slots, available = _thompson_slots(index, take, rng, excluded_slots)
        loss = np.ones(len(slots))
    else:
        result = index.sample(take + len(excluded), rng, mode)
        assert result.slots is not None
        picked = np.flatnonzero(~np.isin(result.slots, excluded_slots))[:take]
        slots, loss = result.slots[picked], result.loss_weights[picked]
        available = _available(index, result.available, excluded, mode)
    explored = explore_slots(left_out, explore, rng, exclude=slots)
    slots = np.concatenate([slots, explored]).astype(np.int64)
    drawn = Draw(
        problem_ids=arrays.ids[slots],
        weights=arrays.weights[slots].copy(),
        loss_weights=np.concatenate([loss, np.zeros(len(explored))]),
        pass_rates=index.pass_rates_of(slots),
        available=int(available),
        sources=np.concatenate(
            [np.zeros(len(slots) - len(explored), np.int8), np.full(len(explored), 3, np.int8)]
        ),
        slots=slots,
        exploring=epsilon > 0,
    )
    if fill == "none":
        # Sources say where items came from when some were explored; a Thompson draw alone
        # reads as a plain one.
        return drawn if epsilon > 0 else replace(drawn, sources=None)
    return _with_fill(index, drawn, size, rng, fill, excluded)


def _thompson_slots(
    index: SamplingIndex, take: int, rng: np.random.Generator, excluded_slots: np.ndarray
) -> tuple[np.ndarray, int]:
    """`take` slots drawn successively ∝ w(p~), p~ one draw of each problem's posterior
    Beta(a0 + k, b0 + n - k) (its evidence: own counts plus prior), none excluded; and how
    many had a positive drawn weight. Efraimidis–Spirakis keys log(u) / w~, top first."""
    arrays = index.arrays()
    config = index.estimator.config
    prior = (config.prior_alpha, config.prior_beta)
    drawn = thompson_weights(arrays.attempts, arrays.successes, index.estimator.kernel, rng, prior)
    drawn[excluded_slots] = 0.0
    positive = np.flatnonzero(drawn > 0)
    take = min(max(take, 0), len(positive))
    keys = np.log(rng.random(len(positive))) / drawn[positive]
    if take == 0:
        return np.empty(0, dtype=np.int64), len(positive)
    top = np.argpartition(-keys, take - 1)[:take] if take < len(positive) else np.arange(take)
    return positive[top[np.argsort(-keys[top], kind="stable")]], len(positive)


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
