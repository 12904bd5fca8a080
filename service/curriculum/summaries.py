"""Run-level summaries over the index arrays: difficulty report and rollout queue.

These are O(N) numpy passes (no Python loop over problems); they serve occasional
inspection and scheduling calls, not the per-batch hot path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.curriculum.estimators import ZONE_NAMES, Estimator, zones


def difficulty_report(
    attempts: np.ndarray,
    successes: np.ndarray,
    weights: np.ndarray,
    n_eligible: int,
    bins: int,
) -> dict[str, Any]:
    """Zone counts, pass-rate histogram of seen problems, mean and effective weight."""
    if bins < 1:
        raise ValueError("bins must be >= 1")
    zone_counts = np.bincount(zones(attempts, successes), minlength=len(ZONE_NAMES))
    seen = attempts > 0
    rates = np.clip(successes[seen] / attempts[seen], 0.0, 1.0)
    counts, edges = np.histogram(rates, bins=bins, range=(0.0, 1.0))
    total = float(weights.sum())
    effective = 0.0
    if total > 0:
        q = weights[weights > 0] / total
        # exp(entropy): the number of equally weighted problems with the same spread.
        effective = float(np.exp(-np.sum(q * np.log(q))))
    return {
        "problems": int(len(attempts)),
        "zones": {name: int(c) for name, c in zip(ZONE_NAMES, zone_counts, strict=True)},
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "mean_weight": total / n_eligible if n_eligible > 0 else 0.0,
        "effective_problems": effective,
    }


def smallest_k(keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest keys, ordered by (key, position); ties broken by position.

    argpartition avoids a full O(N log N) sort; only the k winners are sorted.
    """
    n = len(keys)
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if k < n:
        threshold = keys[np.argpartition(keys, k - 1)[k - 1]]
        below = np.flatnonzero(keys < threshold)
        ties = np.flatnonzero(keys == threshold)[: k - len(below)]
        chosen = np.concatenate([below, ties])
    else:
        chosen = np.arange(n)
    return chosen[np.lexsort((chosen, keys[chosen]))]


def rollout_queue_slots(
    estimator: Estimator,
    attempts: np.ndarray,
    successes: np.ndarray,
    last_step: np.ndarray,
    limit: int,
    current_step: int,
    stale_after: int,
) -> list[tuple[np.ndarray, str]]:
    """Slots that most need rollouts: unseen, then stale (oldest first), then most uncertain."""
    out: list[tuple[np.ndarray, str]] = []
    seen = attempts > 0
    unseen = np.flatnonzero(~seen)[: max(limit, 0)]
    out.append((unseen, "unseen"))
    left = limit - len(unseen)
    stale_mask = seen & (current_step - last_step.astype(np.int64) >= stale_after)
    stale = np.flatnonzero(stale_mask)
    stale = stale[smallest_k(last_step[stale], left)]
    out.append((stale, "stale"))
    left -= len(stale)
    rest = np.flatnonzero(seen & ~stale_mask)
    unc = estimator.uncertainty(attempts[rest], successes[rest])
    out.append((rest[smallest_k(-unc, left)], "uncertain"))
    return out
