"""Run-level summaries over the index arrays: difficulty report, rollout queue, and the
running totals a history snapshot reads.

The report and the queue are O(N) numpy passes (no Python loop over problems); they serve
occasional inspection and scheduling calls, not the per-batch hot path. RunningTotals keeps
what a history snapshot needs up to date per touched problem instead: a snapshot is taken
after every outcomes post that moves the step, and an O(N) pass there cost 14.5 ms per post
at N=1e6.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict, cast

import numpy as np

from service.curriculum.estimators import ZONE_NAMES, Estimator, zones
from service.curriculum.information import FreshRound, stale_priority


class ZoneCounts(TypedDict):
    unseen: int
    intractable: int
    frontier: int
    mastered: int


class HistogramCounts(TypedDict):
    edges: list[float]
    counts: list[int]


class DifficultyReport(TypedDict):
    """What the API's Difficulty body holds (domain/views.py validates it into one)."""

    problems: int
    zones: ZoneCounts
    histogram: HistogramCounts
    mean_weight: float
    effective_problems: float


class Summary(TypedDict):
    """DifficultyReport without the histogram, plus the seen problems' mean pass rate."""

    zones: ZoneCounts
    mean_pass_rate: float | None
    mean_weight: float
    effective_problems: float


def zone_counts(counts: np.ndarray) -> ZoneCounts:
    """Per-zone counts (indexed by zone code) by name."""
    return cast(ZoneCounts, {name: int(c) for name, c in zip(ZONE_NAMES, counts, strict=True)})


# Bin edges are i/bins computed in floats (0.30000000000000004): rounded to what a person reads.
# 4 decimals keep the edges of any bin count the API takes (<= 1000) distinct; the counts are
# binned on the exact edges, only the reported ones are rounded.
EDGE_DECIMALS = 4


def readable_edges(edges: np.ndarray) -> list[float]:
    return [round(float(edge), EDGE_DECIMALS) for edge in edges]


def difficulty_report(
    attempts: np.ndarray,
    successes: np.ndarray,
    weights: np.ndarray,
    n_eligible: int,
    bins: int,
    pass_rates: np.ndarray | None = None,
) -> DifficultyReport:
    """Zone counts, pass-rate histogram of seen problems (of `pass_rates` when given: the
    predicted estimator's), mean and effective weight."""
    if bins < 1:
        raise ValueError("bins must be >= 1")
    per_zone = np.bincount(zones(attempts, successes), minlength=len(ZONE_NAMES))
    seen = attempts > 0
    if pass_rates is None:
        rates = np.clip(successes[seen] / attempts[seen], 0.0, 1.0)
    else:
        rates = np.clip(pass_rates[seen], 0.0, 1.0)
    counts, edges = np.histogram(rates, bins=bins, range=(0.0, 1.0))
    total = float(weights.sum())
    effective = 0.0
    if total > 0:
        q = weights[weights > 0] / total
        # exp(entropy): the number of equally weighted problems with the same spread.
        effective = float(np.exp(-np.sum(q * np.log(q))))
    return {
        "problems": int(len(attempts)),
        "zones": zone_counts(per_zone),
        "histogram": {"edges": readable_edges(edges), "counts": counts.tolist()},
        "mean_weight": total / n_eligible if n_eligible > 0 else 0.0,
        "effective_problems": effective,
    }


def _w_log_w(weights: np.ndarray) -> float:
    positive = weights[weights > 0]
    return float(np.sum(positive * np.log(positive)))


def _rates(attempts: np.ndarray, successes: np.ndarray) -> np.ndarray:
    seen = attempts > 0
    rates: np.ndarray = np.clip(successes[seen] / attempts[seen], 0.0, 1.0)
    return rates


@dataclass
class RunningTotals:
    """Zone counts, the seen problems' pass rates summed, and sum of w log w over positive
    weights: with the total weight (the sum tree's root) they give the zones, mean pass rate
    and effective number of problems of difficulty_report in O(1), since
    exp(-sum q log q) with q = w / W is exp(log W - sum(w log w) / W).

    add() and remove() take the touched problems' stats; the floats drift by rounding only
    (about 1e-16 of the summed magnitude per update)."""

    zone_counts: np.ndarray
    n_seen: int = 0
    sum_rates: float = 0.0
    sum_w_log_w: float = 0.0

    @classmethod
    def of(cls, attempts: np.ndarray, successes: np.ndarray, weights: np.ndarray) -> RunningTotals:
        totals = cls(np.zeros(len(ZONE_NAMES), dtype=np.int64))
        totals.add(attempts, successes, weights)
        return totals

    def add(
        self, attempts: np.ndarray, successes: np.ndarray, weights: np.ndarray, sign: int = 1
    ) -> None:
        self.zone_counts += sign * np.bincount(
            zones(attempts, successes), minlength=len(ZONE_NAMES)
        )
        rates = _rates(attempts, successes)
        self.n_seen += sign * len(rates)
        self.sum_rates += sign * float(rates.sum())
        self.sum_w_log_w += sign * _w_log_w(weights)

    def remove(self, attempts: np.ndarray, successes: np.ndarray, weights: np.ndarray) -> None:
        self.add(attempts, successes, weights, sign=-1)

    def summary(self, total_weight: float, n_eligible: int) -> Summary:
        """zones, mean_pass_rate, mean_weight and effective_problems, as difficulty_report
        and a history snapshot define them."""
        effective = 0.0
        if total_weight > 0:
            effective = float(np.exp(np.log(total_weight) - self.sum_w_log_w / total_weight))
        return {
            "zones": zone_counts(self.zone_counts),
            "mean_pass_rate": self.sum_rates / self.n_seen if self.n_seen else None,
            "mean_weight": total_weight / n_eligible if n_eligible > 0 else 0.0,
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


QueueReason = Literal["unseen", "stale", "uncertain"]


def _spread(slots: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random order of slots (Fibonacci hashing): ties are broken by it, not by
    id, so problems of equal standing are taken across the dataset, not in id order."""
    mixed: np.ndarray = (slots.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)
    return mixed


def _by_information(
    estimator: Estimator,
    slots: np.ndarray,
    attempts: np.ndarray,
    successes: np.ndarray,
    last_step: np.ndarray,
    current_step: int,
    half_life: float,
    limit: int,
) -> np.ndarray:
    """The `limit` slots whose fresh round could teach most (information.stale_priority);
    ties: the older round first, then _spread."""
    if len(slots) == 0 or limit <= 0:
        return slots[:0]
    config = estimator.config
    priority = stale_priority(
        attempts[slots],
        successes[slots],
        current_step - last_step[slots].astype(np.int64),
        FreshRound(
            estimator.kernel, prior=(config.prior_alpha, config.prior_beta), half_life=half_life
        ),
    )
    if limit < len(slots):  # only what reaches the k-th priority needs sorting
        keep = priority >= np.partition(priority, len(slots) - limit)[len(slots) - limit]
        slots, priority = slots[keep], priority[keep]
    order = np.lexsort((_spread(slots), last_step[slots], -priority))
    return slots[order[:limit]]


def rollout_queue_slots(
    estimator: Estimator,
    attempts: np.ndarray,
    successes: np.ndarray,
    last_step: np.ndarray,
    limit: int,
    current_step: int,
    stale_after: int,
) -> list[tuple[np.ndarray, QueueReason]]:
    """Slots that most need rollouts: unseen, then stale, then the rest ("uncertain").

    Stale problems (no round for `stale_after` steps), then the others, are ranked by what a
    fresh round of K = 8 could teach: how far it would move the weight's estimate, with the
    old round's evidence halved every `stale_after` steps, never less for an older round
    (information.stale_priority). Not by age and id: a problem last read 0 of 8 moves its
    weight more when re-read than a p = 0.5 one (w is steep near 0 and 1), so the hard
    problems the student may have learnt since come back, from the whole dataset.
    """
    out: list[tuple[np.ndarray, QueueReason]] = []
    seen = attempts > 0
    unseen = np.flatnonzero(~seen)[: max(limit, 0)]
    out.append((unseen, "unseen"))
    left = limit - len(unseen)
    stale_mask = seen & (current_step - last_step.astype(np.int64) >= stale_after)
    half_life = float(stale_after)
    rank = (attempts, successes, last_step, current_step, half_life)
    stale = _by_information(estimator, np.flatnonzero(stale_mask), *rank, left)
    out.append((stale, "stale"))
    left -= len(stale)
    rest = _by_information(estimator, np.flatnonzero(seen & ~stale_mask), *rank, left)
    out.append((rest, "uncertain"))
    return out
