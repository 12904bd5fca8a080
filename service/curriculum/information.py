"""What a fresh estimate of a problem could teach the curriculum (pure core, numpy/scipy).

The rollout queue spends K rollouts on the problems whose weight a new measurement could move
most. Two things move a weight: what was never known (a round of K = 8 leaves a wide
posterior) and what has changed since (the student trained after the round). So a round's
evidence is discounted with its age, n_eff = n 2^(-age / h), which widens its posterior, and
the queue ranks by how far a fresh round of K rollouts would move the weight's estimate
under that widened posterior (the preposterior standard deviation of E[w]), plus the change
the drift model predicts where it has one:

    priority = sd over y ~ BetaBinomial(K, a, b) of E[w(p) | a + y, b + K - y]
               with a, b = a0 + k_eff, b0 + n_eff - k_eff      (+ |w(p_hat) - w(k/n)|)

The more (and the fresher) the evidence, the less a round moves the estimate; the weight is
steep near p = 0 and p = 1, so a 0-of-8 round leaves more to learn about w than a 4-of-8
one, and an aged round ranks above the same round made fresh: hard problems the student may
have learnt since come back. (The posterior's own sd of w is not used: it is not monotone in the
evidence, as w is flat at p = 0.5.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, gammaln

from service.curriculum.kernels import KernelConfig, beta_kernel

# Steps after which a round counts half (the queue's default forgetting of old evidence).
DEFAULT_STALENESS_HALF_LIFE = 50.0


@dataclass(frozen=True)
class FreshRound:
    """How the queue values a fresh round: the weight kernel, the round's K rollouts, the
    Beta prior the counts add to, and the steps after which old evidence counts half."""

    kernel: KernelConfig
    rollouts: int = 8
    prior: tuple[float, float] = (1.0, 1.0)
    half_life: float = DEFAULT_STALENESS_HALF_LIFE


def weight_moments(
    a: np.ndarray, b: np.ndarray, kernel: KernelConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(E[w(p)], Var[w(p)]) for p ~ Beta(a, b), in closed form:
    E[w^m] = B(a + m alpha, b + m beta) / B(a, b)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    base = betaln(a, b)
    first = np.exp(betaln(a + kernel.alpha, b + kernel.beta) - base)
    second = np.exp(betaln(a + 2 * kernel.alpha, b + 2 * kernel.beta) - base)
    variance: np.ndarray = np.maximum(second - first * first, 0.0)
    return first, variance


def aged_counts(
    attempts: np.ndarray, successes: np.ndarray, age: np.ndarray, half_life: float
) -> tuple[np.ndarray, np.ndarray]:
    """Counts discounted by their age in steps (the posterior of a stale round widens)."""
    factor = np.exp2(-np.maximum(np.asarray(age, dtype=np.float64), 0.0) / half_life)
    return np.asarray(attempts) * factor, np.asarray(successes) * factor


def expected_weight_change(
    a: np.ndarray, b: np.ndarray, rollouts: int, kernel: KernelConfig
) -> np.ndarray:
    """The standard deviation, over the outcomes y of `rollouts` fresh attempts (beta-binomial
    under Beta(a, b)), of the posterior mean weight after them: how far a round would move
    what the curriculum believes. Computed once per distinct (a, b) pair."""
    pairs = np.stack([np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    ua, ub = unique[:, :1], unique[:, 1:]
    y = np.arange(rollouts + 1, dtype=np.float64)[None, :]
    log_choose = gammaln(rollouts + 1.0) - gammaln(y + 1.0) - gammaln(rollouts - y + 1.0)
    pmf = np.exp(log_choose + betaln(ua + y, ub + rollouts - y) - betaln(ua, ub))
    after, _ = weight_moments(ua + y, ub + rollouts - y, kernel)
    before = (pmf * after).sum(axis=1, keepdims=True)
    spread: np.ndarray = np.sqrt(np.maximum((pmf * (after - before) ** 2).sum(axis=1), 0.0))
    return spread[inverse.reshape(-1)]


def queue_priority(
    attempts: np.ndarray,
    successes: np.ndarray,
    age: np.ndarray,
    fresh: FreshRound,
    *,
    predicted: np.ndarray | None = None,
) -> np.ndarray:
    """How much a fresh round of `fresh.rollouts` attempts of each problem could move its
    weight (higher first). `predicted`: the drift model's p_hat per problem (NaN where it has
    none), if the run has one: the predicted change of weight is added."""
    kernel, prior = fresh.kernel, fresh.prior
    n, k = aged_counts(attempts, successes, age, fresh.half_life)
    a, b = prior[0] + k, prior[1] + np.maximum(n - k, 0.0)
    priority: np.ndarray = expected_weight_change(a, b, fresh.rollouts, kernel)
    if predicted is not None:
        n0 = np.asarray(attempts, dtype=np.float64)
        rate = np.divide(successes, n0, out=np.zeros_like(n0), where=n0 > 0)
        expected = beta_kernel(np.nan_to_num(predicted, nan=rate), kernel)
        priority = priority + np.abs(expected - beta_kernel(rate, kernel))
    return priority


# The age grid stale_priority reads the priority on: 0, then half_life / 16 x 2^(j/4).
AGE_GRID_RATIO = 2.0**0.25
# Counts are read to 1/16 of an attempt there (decayed counts are floats: without this every
# problem would be its own pair).
COUNT_RESOLUTION = 16.0


def _age_grid(max_age: float, half_life: float) -> np.ndarray:
    start = half_life / 16.0
    cells = int(np.ceil(np.log(max(max_age, start) / start) / np.log(AGE_GRID_RATIO))) + 1
    return np.concatenate([[0.0], start * AGE_GRID_RATIO ** np.arange(cells)])


def stale_priority(
    attempts: np.ndarray, successes: np.ndarray, age: np.ndarray, fresh: FreshRound
) -> np.ndarray:
    """queue_priority made non-decreasing in age, what the rollout queue ranks by: the most a
    fresh round could teach about these counts at any age up to theirs, read on a grid of ages
    (a round's age rounded down to 0 or half_life / 16 x 2^(j/4)). An old round's evidence
    only fades, so it must never rank below the same round made fresher; queue_priority alone
    does: the spread of E[w] a round could cause peaks at intermediate evidence (0 of 8 at
    half-life 50: 0.055 at age 50, 0.059 at 100, 0.052 at 200, 0.053 in the limit), and
    problems read once at step 0 then lose to ones re-read since (issue 26's level 4)."""
    age = np.maximum(np.asarray(age, dtype=np.float64), 0.0)
    if age.size == 0:
        return np.empty(0)
    grid = _age_grid(float(age.max()), fresh.half_life)
    cell = np.searchsorted(grid, age, side="right") - 1
    counts = np.stack([np.asarray(attempts, float), np.asarray(successes, float)], axis=1)
    pairs, inverse = np.unique(np.round(counts * COUNT_RESOLUTION), axis=0, return_inverse=True)
    pairs = pairs / COUNT_RESOLUTION
    table = np.empty((len(pairs), int(cell.max()) + 1))
    for c in range(table.shape[1]):
        table[:, c] = queue_priority(pairs[:, 0], pairs[:, 1], np.full(len(pairs), grid[c]), fresh)
    envelope: np.ndarray = np.maximum.accumulate(table, axis=1)[inverse.reshape(-1), cell]
    return envelope
