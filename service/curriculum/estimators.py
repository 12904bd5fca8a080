"""Pass-rate estimators: per-problem (attempts, successes) -> weight, pass rate, uncertainty.

Everything here is vectorised over numpy arrays. Counts are float64 because half-life decay
makes them non-integer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from service.curriculum.kernels import KernelConfig, beta_kernel, expected_kernel

Zone = Literal["unseen", "intractable", "frontier", "mastered"]
ZONE_NAMES: tuple[Zone, ...] = ("unseen", "intractable", "frontier", "mastered")
ZONE_UNSEEN, ZONE_INTRACTABLE, ZONE_FRONTIER, ZONE_MASTERED = 0, 1, 2, 3

# Which estimation rounds a problem's counts cover. "all": every outcome ever posted (with an
# optional half-life). "latest": only the outcomes at the problem's newest step, so after a
# fresh K-rollout re-estimate the pass rate IS that estimate (the student moves; old rounds
# describe an older student). See docs/architecture.md, "Pass rates that track the student".
Window = Literal["all", "latest"]
WINDOWS: tuple[Window, ...] = ("all", "latest")
EstimatorKind = Literal["empirical", "posterior", "predicted"]
ESTIMATOR_KINDS: tuple[EstimatorKind, ...] = ("empirical", "posterior", "predicted")


@dataclass(frozen=True)
class EstimatorConfig:
    """How a pass rate is estimated from counts.

    "empirical" is the paper's p = k/n; "posterior" averages the kernel over
    Beta(prior_alpha + k, prior_beta + n - k), so small K is honest and unseen problems keep
    the prior's weight. "predicted" is the drift model's pass rate for the current student
    (curriculum/drift.py: each problem's newest round moved by how its zone's logit has
    shifted since), weight w(p_hat); the counts are read as "empirical" reads them wherever
    a problem has no prediction yet. half_life_steps and window are used by merge_outcome:
    counts decay with steps, or only the newest round counts.
    """

    kind: EstimatorKind = "empirical"
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    half_life_steps: float | None = None
    window: Window = "all"

    def __post_init__(self) -> None:
        if self.kind not in ESTIMATOR_KINDS:
            raise ValueError(f"unknown estimator kind {self.kind!r}")
        if not (self.prior_alpha > 0 and self.prior_beta > 0):
            raise ValueError("Beta prior parameters must be > 0")
        if self.half_life_steps is not None and not self.half_life_steps > 0:
            raise ValueError("half_life_steps must be > 0 or None")
        if self.window not in WINDOWS:
            raise ValueError(f"unknown window {self.window!r}")
        if self.window == "latest" and self.half_life_steps is not None:
            raise ValueError("window 'latest' keeps one round only: half_life_steps must be None")


def _counts(attempts: ArrayLike, successes: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(attempts, dtype=np.float64)
    # Rounding in decayed counts can push k a hair above n or below 0; clip so p stays in [0,1].
    k = np.clip(np.asarray(successes, dtype=np.float64), 0.0, np.maximum(n, 0.0))
    return n, k


class Estimator:
    """Turns count arrays into weights under one (kernel, estimator) configuration."""

    def __init__(self, kernel: KernelConfig, estimator: EstimatorConfig) -> None:
        self.kernel = kernel
        self.config = estimator

    @property
    def is_posterior(self) -> bool:
        return self.config.kind == "posterior"

    def _posterior_params(
        self, attempts: ArrayLike, successes: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray]:
        n, k = _counts(attempts, successes)
        return self.config.prior_alpha + k, self.config.prior_beta + np.maximum(n - k, 0.0)

    def weights(self, attempts: np.ndarray, successes: np.ndarray) -> np.ndarray:
        """Sampling / loss weight per problem (float64, >= 0)."""
        if self.is_posterior:
            return expected_kernel(*self._posterior_params(attempts, successes), self.kernel)
        n, k = _counts(attempts, successes)
        seen = n > 0
        p = np.divide(k, n, out=np.zeros_like(n), where=seen)
        # Unseen problems have no estimate, so they are not eligible (weight 0).
        return np.where(seen, beta_kernel(p, self.kernel), 0.0)

    def unseen_weight(self) -> float:
        """Weight of a problem with no attempts (the prior's expectation, or 0)."""
        return float(self.weights(np.zeros(1), np.zeros(1))[0])

    def pass_rates(self, attempts: np.ndarray, successes: np.ndarray) -> np.ndarray:
        """k / n, NaN where there were no attempts (same for both kinds)."""
        n, k = _counts(attempts, successes)
        rates: np.ndarray = np.divide(k, n, out=np.full_like(n, np.nan), where=n > 0)
        return rates

    def uncertainty(self, attempts: np.ndarray, successes: np.ndarray) -> np.ndarray:
        """Posterior variance of p under the Beta prior (also for the empirical kind).

        Used to rank which seen problems most need fresh rollouts.
        """
        a, b = self._posterior_params(attempts, successes)
        s = a + b
        variance: np.ndarray = a * b / (s * s * (s + 1.0))
        return variance

    def eligible_uniform(self, attempts: np.ndarray) -> np.ndarray:
        """Problems that have a weight estimate and may be drawn in uniform mode."""
        n = np.asarray(attempts, dtype=np.float64)
        if self.is_posterior:
            return np.ones(n.shape, dtype=bool)
        return n > 0


def merge_factors(
    old_step: ArrayLike, new_step: ArrayLike, half_life_steps: float | None, window: str = "all"
) -> tuple[np.ndarray, np.ndarray]:
    """(factor on the stored counts, factor on the new counts) when folding outcomes in.

    window "all": with h=None both are 1 (plain sums); with a half-life the side with the
    older step is discounted by 2^(-gap/h). window "latest": the newer step replaces, the same
    step adds, an older step is ignored (the limit h -> 0). The one definition of the merge
    rule; domain/outcomes.py aggregates with it and store/stats.py has its SQL twin (tested
    against this function).
    """
    old_t = np.asarray(old_step, dtype=np.int64)
    new_t = np.asarray(new_step, dtype=np.int64)
    newer = new_t >= old_t
    if window == "latest":
        return (new_t <= old_t).astype(np.float64), newer.astype(np.float64)
    if half_life_steps is None:
        ones = np.ones(np.broadcast(old_t, new_t).shape)
        return ones, ones.copy()
    gap = np.abs(new_t - old_t).astype(np.float64)
    decay = np.exp2(-gap / float(half_life_steps))
    return np.where(newer, decay, 1.0), np.where(newer, 1.0, decay)


def merge_outcome(
    attempts: ArrayLike,
    successes: ArrayLike,
    last_step: ArrayLike,
    new_attempts: ArrayLike,
    new_successes: ArrayLike,
    new_step: ArrayLike,
    half_life_steps: float | None,
    window: str = "all",
) -> tuple[Any, Any, Any]:
    """Fold new outcomes into (possibly decayed) counts; scalar or vectorised.

    Effective counts at the newest step T are sum_i n_i * 2^(-(T - t_i)/h) (window "all"), or
    sum over the outcomes at step T only (window "latest"). Folding keeps that invariant
    whatever the arrival order: if the new step is newer, the old counts decay to it (or are
    replaced); if it is older, the new counts are discounted to the stored step (or dropped).
    With h=None the counts are plain sums and the step is the max. last_step=-1 means "never
    seen". Returns (attempts, successes, last_step).
    """
    scalar = all(np.ndim(x) == 0 for x in (attempts, successes, last_step, new_attempts))
    old_n = np.asarray(attempts, dtype=np.float64)
    old_k = np.asarray(successes, dtype=np.float64)
    old_t = np.asarray(last_step, dtype=np.int64)
    add_n = np.asarray(new_attempts, dtype=np.float64)
    add_k = np.asarray(new_successes, dtype=np.float64)
    new_t = np.asarray(new_step, dtype=np.int64)
    old_factor, new_factor = merge_factors(old_t, new_t, half_life_steps, window)
    out_n = old_n * old_factor + add_n * new_factor
    out_k = old_k * old_factor + add_k * new_factor
    out_t = np.maximum(old_t, new_t)
    if scalar:
        return float(out_n), float(out_k), int(out_t)
    return out_n, out_k, out_t


def zones(attempts: np.ndarray, successes: np.ndarray) -> np.ndarray:
    """Zone per problem (int8): 0 unseen, 1 intractable, 2 frontier, 3 mastered (ZONE_NAMES)."""
    n = np.asarray(attempts, dtype=np.float64)
    k = np.asarray(successes, dtype=np.float64)
    out = np.full(n.shape, ZONE_FRONTIER, dtype=np.int8)
    out[k >= n] = ZONE_MASTERED
    out[k <= 0] = ZONE_INTRACTABLE
    out[n <= 0] = ZONE_UNSEEN
    return out
