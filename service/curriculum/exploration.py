"""Exploration for batch draws (pure core): Thompson weights and an epsilon share of the
problems the weights leave out.

- Thompson: each problem's weight is w(p) at ONE draw of p from its posterior
  Beta(a0 + k, b0 + n - k), instead of the posterior mean E[w(p)]. Problems whose weight is
  uncertain are drawn sometimes even when their mean is low (the unseen, the K = 8 rounds
  that read 0 or 8 by chance). The draw is made from a generator the caller seeds (the
  batch's seed, draw key and the run's version), so a repeated request gets the same batch.
- Epsilon: a fraction of a batch drawn uniformly from problems whose weight is 0 or that are
  unseen, so mastered and intractable problems are re-tested now and then instead of coming
  back only through the rollout queue (a floor on their chance of being drawn).
"""

from __future__ import annotations

import hashlib

import numpy as np

from service.curriculum.kernels import KernelConfig, beta_kernel


def thompson_weights(
    attempts: np.ndarray,
    successes: np.ndarray,
    kernel: KernelConfig,
    rng: np.random.Generator,
    prior: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """w(p~) per problem, p~ one draw of Beta(a0 + k, b0 + n - k) from `rng`."""
    n = np.asarray(attempts, dtype=np.float64)
    k = np.clip(np.asarray(successes, dtype=np.float64), 0.0, np.maximum(n, 0.0))
    drawn = rng.beta(prior[0] + k, prior[1] + np.maximum(n - k, 0.0))
    weights: np.ndarray = beta_kernel(drawn, kernel)
    return weights


def exploration_count(size: int, epsilon: float, candidates: int) -> int:
    """How many of a batch of `size` come from the exploration pool: round(epsilon * size),
    at most what the pool holds."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError("epsilon must be in [0, 1]")
    return min(int(round(epsilon * size)), int(candidates))


def explore_slots(
    left_out: np.ndarray, count: int, rng: np.random.Generator, exclude: np.ndarray | None = None
) -> np.ndarray:
    """`count` distinct slots drawn uniformly from `left_out` (a boolean mask over the problems:
    weight 0 or unseen), none of `exclude` (the slots the weighted draw already took)."""
    pool = np.flatnonzero(left_out)
    if exclude is not None and exclude.size:
        pool = np.setdiff1d(pool, exclude, assume_unique=False)
    if count <= 0 or pool.size == 0:
        return np.empty(0, dtype=np.int64)
    chosen: np.ndarray = rng.choice(pool, size=min(count, pool.size), replace=False)
    return chosen.astype(np.int64)


def draw_rng(seed: int | None, draw_key: str | None, version: int) -> np.random.Generator:
    """The generator of an exploring batch: one stream per (seed, draw key, run version), so
    the same request against the same run state draws the same batch on every replica, and
    a new outcome (a new version) or another key draws afresh. No seed: fresh entropy."""
    if seed is None:
        return np.random.default_rng()
    key = 0
    if draw_key is not None:
        key = int.from_bytes(hashlib.sha256(draw_key.encode()).digest()[:8], "little")
    return np.random.default_rng([seed % 2**64, key, version])
