"""What a SamplingIndex reads as a problem's evidence besides its own counts: per-problem
priors (pseudo-counts added to the counts, curriculum/priors.py) and the predicted
estimator's pass rates (curriculum/drift.py, fed by domain/predictions.py). A mixin of
SamplingIndex, kept apart so that the index's own file holds the trees and the draws."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from service.curriculum.kernels import beta_kernel
from service.curriculum.summaries import RunningTotals
from service.curriculum.sumtree import SumTree

if TYPE_CHECKING:
    from service.curriculum.estimators import Estimator
    from service.curriculum.priors import PriorCounts


def _last_wins(slots: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop duplicate slots keeping each one's last row (absolute values: newest wins)."""
    order = np.argsort(slots, kind="stable")
    slots = slots[order]
    keep = np.append(slots[1:] != slots[:-1], len(slots) > 0)[: len(slots)]
    return (slots[keep], *(np.asarray(c)[order][keep] for c in columns))


class EvidenceMixin:
    """SamplingIndex's priors and predictions (its arrays and write path are the index's)."""

    estimator: Estimator
    _ids: np.ndarray
    _attempts: np.ndarray
    _successes: np.ndarray
    _last_step: np.ndarray
    _tree: SumTree
    _n_positive: int
    _totals: RunningTotals
    _priors: PriorCounts
    _predicted: np.ndarray | None

    if TYPE_CHECKING:

        @property
        def n_problems(self) -> int: ...

        def _known_slots(self, ids: np.ndarray) -> np.ndarray: ...

        def _write(
            self, slots: np.ndarray, att: np.ndarray, succ: np.ndarray, step: np.ndarray
        ) -> None: ...

    # ---- priors ---------------------------------------------------------------------------

    def set_priors(self, ids: np.ndarray, attempts: np.ndarray, successes: np.ndarray) -> None:
        """Replace these problems' prior pseudo-counts (absolute; 0, 0: no prior). A problem's
        evidence is its own counts plus its prior, whichever of the two was set first."""
        slots = self._known_slots(np.atleast_1d(ids))
        if slots.size == 0:
            return
        n = len(slots)
        slots, new_n, new_k = _last_wins(
            slots,
            np.broadcast_to(np.asarray(attempts, dtype=np.float64), (n,)),
            np.broadcast_to(np.asarray(successes, dtype=np.float64), (n,)),
        )
        old_n, old_k = self._priors.of(slots)
        # x + p - p is x exactly when x is 0: a problem without outcomes stays unseen.
        own_n = np.maximum(self._attempts[slots] - old_n, 0.0)
        own_k = np.maximum(self._successes[slots] - old_k, 0.0)
        self._priors.set(slots, new_n, new_k, self.n_problems)
        self._write(slots, own_n + new_n, own_k + new_k, self._last_step[slots].astype(np.int64))

    def replace_priors(self, ids: np.ndarray, attempts: np.ndarray, successes: np.ndarray) -> None:
        """Every prior at once (what the database holds): problems not named have none."""
        n = self.n_problems
        new_n, new_k = np.zeros(n), np.zeros(n)
        slots = self._known_slots(np.asarray(ids, dtype=np.int64))
        new_n[slots], new_k[slots] = attempts, successes
        old_n, old_k = self._priors.full(n)
        changed = np.flatnonzero((new_n != old_n) | (new_k != old_k))
        if changed.size:
            self.set_priors(self._ids[changed], new_n[changed], new_k[changed])

    def priors_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(prior attempts, prior successes) of the given problems (zeros: no prior)."""
        return self._priors.of(self._known_slots(np.atleast_1d(ids)))

    # ---- predictions (the "predicted" estimator) ----------------------------------------

    def set_predictions(self, pass_rates: np.ndarray) -> None:
        """Every slot's predicted pass rate (NaN: none): weights become w(p_hat) where a
        seen problem has one, the counts' rule elsewhere. O(N): the model moves them all."""
        n = self.n_problems
        predicted = np.full(n, np.nan)
        given = np.asarray(pass_rates, dtype=np.float64)[:n]
        predicted[: len(given)] = given
        self._predicted = predicted
        weights = self._weights_of(np.arange(n), self._attempts, self._successes)
        self._tree = SumTree.from_leaves(weights, capacity=self._tree.capacity)
        self._n_positive = int(np.count_nonzero(weights > 0))
        self._totals = RunningTotals.of(self._attempts, self._successes, weights)

    def pass_rates_of(self, slots: np.ndarray) -> np.ndarray:
        """The estimator's pass rate of these slots: k/n of the evidence (NaN for unseen), or
        the prediction where there is one."""
        att, succ = self._attempts[slots], self._successes[slots]
        rates = self.estimator.pass_rates(att, succ)
        if self._predicted is not None:
            predicted = self._predicted[slots]
            rates = np.where(np.isfinite(predicted) & (att > 0), predicted, rates)
        return rates

    def _weights_of(self, slots: np.ndarray, att: np.ndarray, succ: np.ndarray) -> np.ndarray:
        weights = self.estimator.weights(att, succ)
        if self._predicted is not None:
            predicted = self._predicted[slots]
            have = np.isfinite(predicted) & (att > 0)
            predicted_w = beta_kernel(np.nan_to_num(predicted), self.estimator.kernel)
            weights = np.where(have, predicted_w, weights)
        return weights
