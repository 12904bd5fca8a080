"""Per-problem priors as Beta pseudo-counts (pure core, numpy only).

A prior says, for one problem, "a pass rate p, worth w attempts": the pseudo-counts
(w, w p) are added to the problem's own counts, so every estimator reads the sum as its
evidence (empirical: (k + w p) / (n + w); posterior: Beta(a0 + k + w p, b0 + n - k + w (1 - p)))
and a problem with only a prior has an estimate, a weight and a zone before its first rollout.
A fresh round of K rollouts outweighs a prior of w < K pseudo-attempts.

Two sources: an uploaded profile (a reference model's pass rates, each with its weight), and
another run's current estimates, down-weighted to at most n0 pseudo-attempts per problem (that
run's student is not this one: its evidence counts for a round of n0 attempts, not for
everything it saw).
"""

from __future__ import annotations

import numpy as np


def profile_counts(
    pass_rates: np.ndarray, pseudo_attempts: np.ndarray, cap: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(attempts, successes) pseudo-counts of a profile: w = min(pseudo_attempts, cap), w p."""
    p = np.clip(np.asarray(pass_rates, dtype=np.float64), 0.0, 1.0)
    w = np.asarray(pseudo_attempts, dtype=np.float64)
    if cap is not None:
        w = np.minimum(w, cap)
    return w, w * p


def from_estimates(
    attempts: np.ndarray, successes: np.ndarray, cap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Another run's evidence (counts, its own prior included) as a prior: its pass rate k/n
    at the weight min(n, cap). Problems without evidence get (0, 0): no prior."""
    n = np.asarray(attempts, dtype=np.float64)
    k = np.clip(np.asarray(successes, dtype=np.float64), 0.0, np.maximum(n, 0.0))
    w = np.minimum(np.maximum(n, 0.0), cap)
    rate = np.divide(k, n, out=np.zeros_like(n), where=n > 0)
    return w, w * rate


class PriorCounts:
    """The prior pseudo-counts of an index's slots. No arrays until a prior is set: a run
    without priors pays no memory for them."""

    def __init__(self) -> None:
        self.attempts: np.ndarray | None = None
        self.successes: np.ndarray | None = None

    @property
    def any(self) -> bool:
        return self.attempts is not None

    def of(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pseudo-counts of these slots (zeros without priors)."""
        if self.attempts is None or self.successes is None:
            zeros = np.zeros(len(slots))
            return zeros, zeros.copy()
        return self.attempts[slots], self.successes[slots]

    def full(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Every slot's pseudo-counts (copies)."""
        if self.attempts is None or self.successes is None:
            return np.zeros(size), np.zeros(size)
        return self.attempts[:size].copy(), self.successes[:size].copy()

    def set(
        self, slots: np.ndarray, attempts: np.ndarray, successes: np.ndarray, size: int
    ) -> None:
        if self.attempts is None or self.successes is None:
            self.attempts, self.successes = np.zeros(size), np.zeros(size)
        self.attempts[slots] = attempts
        self.successes[slots] = successes

    def grow(self, size: int) -> None:
        if self.attempts is None or self.successes is None:
            return
        extra = size - len(self.attempts)
        if extra > 0:
            self.attempts = np.concatenate([self.attempts, np.zeros(extra)])
            self.successes = np.concatenate([self.successes, np.zeros(extra)])

    @property
    def nbytes(self) -> int:
        if self.attempts is None or self.successes is None:
            return 0
        return self.attempts.nbytes + self.successes.nbytes
