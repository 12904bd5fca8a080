"""SamplingIndex: a run's per-problem state in memory, and batch sampling from it.

Slots follow problem ids in ascending order (ids only ever get appended, so id -> slot is a
searchsorted). Memory per problem: id int64 (8) + attempts f64 (8) + successes f64 (8) +
last_step int32 (4) + weight sum tree (2 leaves per problem at a power-of-two capacity:
16..32) + seen-count tree over blocks of 64 slots (<1) = at most ~61 bytes (+16 for prior
pseudo-counts, once the run has priors).

Why a seen-count tree rather than a list of seen slots: uniform mode must pick uniformly
among seen problems; counting them per block of 64 lets a descent pick the r-th seen slot in
canonical slot order, so the batch depends only on the index contents and the rng — a
rebuilt index draws the same batch as one updated incrementally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.curriculum.estimators import Estimator, zones
from service.curriculum.evidence import EvidenceMixin, _last_wins
from service.curriculum.priors import PriorCounts
from service.curriculum.summaries import (
    DifficultyReport,
    RunningTotals,
    Summary,
    difficulty_report,
    rollout_queue_slots,
)
from service.curriculum.sumtree import SumTree

BLOCK_SHIFT = 6  # seen counts are kept per block of 2**6 = 64 slots
BLOCK = 1 << BLOCK_SHIFT
MAX_ROUNDS = 8  # with-replacement rounds before falling back to an exact method
UNIFORM_EXACT_SHARE = 8  # uniform mode permutes outright when take > n_seen / 8


@dataclass(frozen=True)
class SampleResult:
    problem_ids: np.ndarray  # int64, distinct, in draw order
    weights: np.ndarray  # the estimator's weight of each drawn problem
    loss_weights: np.ndarray  # multiply each problem's loss by this
    pass_rates: np.ndarray  # k/n, NaN for unseen
    available: int  # how many problems were eligible for this mode
    # Where the problems sit in the index (slot order = ascending problem id): lets the
    # caller address per-problem data kept in the same order (the prompt cache's texts).
    slots: np.ndarray | None = None


def _first_appearances(seq: np.ndarray) -> np.ndarray:
    """Distinct values in order of first appearance.

    Applied to an i.i.d. weighted sequence this IS successive sampling without replacement.
    """
    _, first = np.unique(seq, return_index=True)
    return seq[np.sort(first)]


@dataclass(frozen=True)
class IndexArrays:
    """Views of an index's per-slot arrays, slot order (sorted problem ids)."""

    ids: np.ndarray
    attempts: np.ndarray
    successes: np.ndarray
    last_step: np.ndarray
    weights: np.ndarray


class SamplingIndex(EvidenceMixin):
    """Per-run in-memory state. Slots follow sorted problem ids (int64, ascending)."""

    def __init__(self, problem_ids: np.ndarray, estimator: Estimator) -> None:
        ids = np.asarray(problem_ids, dtype=np.int64).ravel()
        if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):
            ids = np.unique(ids)
        n = len(ids)
        self.estimator = estimator
        self._ids = ids
        self._attempts = np.zeros(n, dtype=np.float64)
        self._successes = np.zeros(n, dtype=np.float64)
        self._last_step = np.full(n, -1, dtype=np.int32)
        unseen_w = estimator.unseen_weight()
        self._tree = SumTree.from_leaves(np.full(n, unseen_w))
        self._n_positive = n if unseen_w > 0 else 0
        self._seen = SumTree(self._n_blocks(n))
        self._totals = RunningTotals.of(self._attempts, self._successes, self._tree.leaves[:n])
        # Per-problem prior pseudo-counts (curriculum/priors.py): _attempts and _successes
        # hold the evidence, a problem's own counts plus its prior.
        self._priors = PriorCounts()
        # The "predicted" estimator's pass rate per slot (NaN: no prediction): set by
        # set_predictions, read wherever a weight or a pass rate is computed.
        self._predicted: np.ndarray | None = None

    @staticmethod
    def _n_blocks(n: int) -> int:
        return max(1, (n + BLOCK - 1) >> BLOCK_SHIFT)

    @classmethod
    def build(
        cls,
        problem_ids: np.ndarray,
        estimator: Estimator,
        stat_ids: np.ndarray,
        attempts: np.ndarray,
        successes: np.ndarray,
        last_step: np.ndarray,
    ) -> SamplingIndex:
        """Bulk construction from stored stats (stat_ids a subset of problem_ids); O(N) numpy."""
        index = cls(problem_ids, estimator)
        slots = index._known_slots(stat_ids)
        slots, att, succ, step = _last_wins(slots, attempts, successes, last_step)
        index._attempts[slots] = att
        index._successes[slots] = succ
        index._last_step[slots] = step
        n = index.n_problems
        weights = estimator.weights(index._attempts, index._successes)
        index._tree = SumTree.from_leaves(weights)
        index._n_positive = int(np.count_nonzero(weights > 0))
        index._totals = RunningTotals.of(index._attempts, index._successes, weights)
        seen_slots = np.flatnonzero(index._attempts > 0)
        counts = np.bincount(seen_slots >> BLOCK_SHIFT, minlength=cls._n_blocks(n))
        index._seen = SumTree.from_leaves(counts.astype(np.float64))
        return index

    # ---- lookup -------------------------------------------------------------------------

    def slots_of(self, ids: np.ndarray) -> np.ndarray:
        """Slot of each id, -1 where the id is unknown."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self._ids) == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        return np.where(self._ids[pos] == ids, pos, -1).astype(np.int64)

    def _known_slots(self, ids: np.ndarray) -> np.ndarray:
        slots = self.slots_of(ids)
        if np.any(slots < 0):
            unknown = np.asarray(ids)[slots < 0]
            raise KeyError(f"{len(unknown)} unknown problem ids, e.g. {unknown[:5].tolist()}")
        return slots

    def stats_of(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Current state of the given problems (KeyError if any id is unknown)."""
        slots = self._known_slots(ids)
        att, succ = self._attempts[slots], self._successes[slots]
        return {
            "attempts": att,
            "successes": succ,
            "last_step": self._last_step[slots].astype(np.int64),
            "pass_rate": self.pass_rates_of(slots),
            "weight": self._tree.leaves[slots].copy(),
            "zone": zones(att, succ),
        }

    # ---- updates ------------------------------------------------------------------------

    def add_problems(self, new_ids: np.ndarray) -> None:
        """Append problems (all unseen); known ids are ignored, new ids must exceed the max."""
        new_ids = np.unique(np.asarray(new_ids, dtype=np.int64))
        new_ids = new_ids[self.slots_of(new_ids) < 0]
        if new_ids.size == 0:
            return
        if self.n_problems and new_ids[0] <= self._ids[-1]:
            raise ValueError("new problem ids must be larger than every existing id")
        start, n = self.n_problems, self.n_problems + len(new_ids)
        self._ids = np.concatenate([self._ids, new_ids])
        self._attempts = np.concatenate([self._attempts, np.zeros(len(new_ids))])
        self._successes = np.concatenate([self._successes, np.zeros(len(new_ids))])
        self._last_step = np.concatenate(
            [self._last_step, np.full(len(new_ids), -1, dtype=np.int32)]
        )
        self._tree.grow(n)
        self._seen.grow(self._n_blocks(n))
        self._priors.grow(n)
        if self._predicted is not None:
            self._predicted = np.concatenate([self._predicted, np.full(len(new_ids), np.nan)])
        unseen_w = self.estimator.unseen_weight()
        if unseen_w > 0:
            self._tree.update(np.arange(start, n), unseen_w)
            self._n_positive += len(new_ids)
        fresh = np.zeros(len(new_ids))
        self._totals.add(fresh, fresh, np.full(len(new_ids), unseen_w))

    def set_stats(
        self, ids: np.ndarray, attempts: np.ndarray, successes: np.ndarray, last_step: np.ndarray
    ) -> None:
        """Write absolute stats (rows from the DB) and recompute weights only for those ids.

        Unknown ids raise KeyError (add_problems first). Duplicate ids: the last row wins.
        """
        slots = self._known_slots(np.atleast_1d(ids))
        if slots.size == 0:
            return
        n = len(slots)
        slots, att, succ, step = _last_wins(
            slots,
            np.broadcast_to(np.asarray(attempts, dtype=np.float64), (n,)),
            np.broadcast_to(np.asarray(successes, dtype=np.float64), (n,)),
            np.broadcast_to(np.asarray(last_step, dtype=np.int64), (n,)),
        )
        if self._priors.any:
            prior_n, prior_k = self._priors.of(slots)
            att, succ = att + prior_n, succ + prior_k
        self._write(slots, att, succ, step)

    def _write(
        self, slots: np.ndarray, att: np.ndarray, succ: np.ndarray, step: np.ndarray
    ) -> None:
        """Set the evidence of distinct slots and update the trees and totals."""
        old_weights = self._tree.leaves[slots]  # fancy indexing: copies
        self._totals.remove(self._attempts[slots], self._successes[slots], old_weights)
        was_seen = self._attempts[slots] > 0
        was_positive = old_weights > 0
        self._attempts[slots] = att
        self._successes[slots] = succ
        self._last_step[slots] = step
        weights = self._weights_of(slots, att, succ)
        self._totals.add(att, succ, weights)
        self._n_positive += int(np.count_nonzero(weights > 0)) - int(np.count_nonzero(was_positive))
        self._tree.update(slots, weights)
        delta = (att > 0).astype(np.int64) - was_seen
        changed = delta != 0
        if np.any(changed):
            blocks, inverse = np.unique(slots[changed] >> BLOCK_SHIFT, return_inverse=True)
            counts = np.bincount(inverse, weights=delta[changed])
            self._seen.update(blocks, self._seen.leaves[blocks] + counts)

    # ---- sizes --------------------------------------------------------------------------

    def arrays(self) -> IndexArrays:
        """Views, not copies, of the per-slot arrays (hold the run's lock while reading them;
        copy what you keep): summaries over a million problems without a copy."""
        n = self.n_problems
        return IndexArrays(
            ids=self._ids,
            attempts=self._attempts,
            successes=self._successes,
            last_step=self._last_step,
            weights=self._tree.leaves[:n],
        )

    @property
    def n_problems(self) -> int:
        return len(self._ids)

    @property
    def problem_ids(self) -> np.ndarray:
        """Every problem id, ascending (read-only view: do not modify)."""
        return self._ids

    def unseen_ids(self) -> np.ndarray:
        """Ids of problems without outcomes, ascending (an O(N) scan: not for the hot path)."""
        return self._ids[self._attempts <= 0]

    @property
    def n_seen(self) -> int:
        return int(round(self._seen.total()))

    @property
    def n_positive(self) -> int:
        return self._n_positive

    @property
    def total_weight(self) -> float:
        return self._tree.total()

    @property
    def nbytes(self) -> int:
        """Bytes held by all arrays (see the module docstring for the per-problem count)."""
        arrays = (self._ids, self._attempts, self._successes, self._last_step)
        trees = self._tree.nbytes + self._seen.nbytes
        return sum(a.nbytes for a in arrays) + trees + self._priors.nbytes

    def _n_eligible_uniform(self) -> int:
        return self.n_problems if self.estimator.is_posterior else self.n_seen

    # ---- sampling -----------------------------------------------------------------------

    def sample(
        self,
        size: int,
        rng: np.random.Generator,
        mode: Literal["proportional", "uniform"] = "proportional",
    ) -> SampleResult:
        """Draw up to `size` distinct problems (all eligible ones if fewer than `size`).

        proportional: successive sampling without replacement with probability ∝ weight,
        loss weight 1. uniform: uniform without replacement among problems with an
        estimate, loss weight = weight / mean eligible weight. Deterministic given the rng
        state and the index contents.
        """
        if mode == "proportional":
            available = self._n_positive
            slots = self._draw_proportional(min(size, available), rng)
            loss = np.ones(len(slots))
        elif mode == "uniform":
            available = self._n_eligible_uniform()
            slots = self._draw_uniform(min(size, available), rng)
            mean = self.total_weight / available if available else 0.0
            loss = self._tree.leaves[slots] / mean if mean > 0 else np.zeros(len(slots))
        else:
            raise ValueError(f"unknown sampling mode {mode!r}")
        return SampleResult(
            problem_ids=self._ids[slots],
            weights=self._tree.leaves[slots].copy(),
            loss_weights=loss,
            pass_rates=self.pass_rates_of(slots),
            available=int(available),
            slots=slots,
        )

    def _draw_proportional(self, take: int, rng: np.random.Generator) -> np.ndarray:
        if take <= 0:
            return np.empty(0, dtype=np.int64)
        if 2 * take > self._n_positive:
            # Rejection of repeats would waste most draws: use exact keys over positives.
            return self._exact_successive(take, rng)
        new = self._tree.draw_first_appearances(take + take // 8 + 8, rng)
        if len(new) >= take:
            return new[:take]  # the usual case at scale: one round, nothing to zero/restore
        parts, saved, got = [new], [], len(new)
        try:
            for _ in range(MAX_ROUNDS):
                # Later draws must be conditioned on what was already picked: zero those
                # leaves for the rest of this call (restored below), which keeps it exact.
                saved.append((new, self._tree.leaves[new].copy()))
                self._tree.update(new, 0.0)
                if len(parts) == MAX_ROUNDS:
                    parts.append(self._exact_successive(take - got, rng))
                    break
                need = take - got
                new = self._tree.draw_first_appearances(need + need // 8 + 8, rng)[:need]
                parts.append(new)
                got += len(new)
                if got >= take:
                    break
        finally:
            for slots, values in reversed(saved):
                self._tree.update(slots, values)
        return np.concatenate(parts)

    def _exact_successive(self, take: int, rng: np.random.Generator) -> np.ndarray:
        """Efraimidis–Spirakis: keys log(u)/w, the top keys in order are successive sampling."""
        slots = self._tree.positive_leaves()
        keys = np.log(rng.random(len(slots))) / self._tree.leaves[slots]
        top = np.arange(len(slots))
        if take < len(slots):
            top = np.argpartition(-keys, take - 1)[:take]
        return slots[top[np.argsort(-keys[top], kind="stable")]]

    def _draw_uniform(self, take: int, rng: np.random.Generator) -> np.ndarray:
        if take <= 0:
            return np.empty(0, dtype=np.int64)
        if self.estimator.is_posterior:
            # Every problem is eligible; Generator.choice without p is O(take), not O(N).
            return rng.choice(self.n_problems, size=take, replace=False).astype(np.int64)
        if UNIFORM_EXACT_SHARE * take > self.n_seen:
            # A large share would need many rounds of rejected repeats; permuting the seen
            # slots costs O(n_seen) = O(take) here.
            return rng.permutation(self._seen_slots())[:take]
        # First appearances of one growing i.i.d. uniform sequence: a uniform ordered sample.
        sequence = np.empty(0, dtype=np.int64)
        chosen = sequence
        for _ in range(MAX_ROUNDS):
            need = take - len(chosen)
            sequence = np.concatenate([sequence, self._draw_seen(need + need // 4 + 8, rng)])
            chosen = _first_appearances(sequence)
            if len(chosen) >= take:
                return chosen[:take]
        rest = np.setdiff1d(self._seen_slots(), chosen, assume_unique=True)
        return np.concatenate([chosen, rng.permutation(rest)[: take - len(chosen)]])

    def _draw_seen(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """size i.i.d. slots uniform among seen ones: pick a block ∝ its seen count, then the
        r-th seen slot inside it, with r the descent's remainder (uniform in [0, count))."""
        blocks, rem = self._seen.descend(rng.random(size) * self._seen.total())
        rank = np.minimum(rem, self._seen.leaves[blocks] - 1).astype(np.int32)  # floor
        starts = blocks << BLOCK_SHIFT
        candidates = starts[:, None] + np.arange(BLOCK)
        # mode="clip" reads slot N-1 for the padding past the end; mask those out.
        seen = (self._attempts.take(candidates, mode="clip") > 0) & (candidates < self.n_problems)
        # Running count of seen slots along each row: one flat cumsum (much faster than
        # cumsum over axis 1), minus what the previous rows contributed. The answer is the
        # first position where the count exceeds the rank.
        flat = np.cumsum(seen.ravel(), dtype=np.int32).reshape(seen.shape)
        running = flat - (flat[:, :1] - seen[:, :1])
        slots: np.ndarray = starts + np.count_nonzero(running <= rank[:, None], axis=1)
        return slots

    def _seen_slots(self) -> np.ndarray:
        """All seen slots, found through non-empty blocks (no O(N) scan when few are seen)."""
        blocks = self._seen.positive_leaves()
        candidates = ((blocks << BLOCK_SHIFT)[:, None] + np.arange(BLOCK)).ravel()
        candidates = candidates[candidates < self.n_problems]
        seen_slots: np.ndarray = candidates[self._attempts[candidates] > 0]
        return seen_slots

    # ---- summaries ----------------------------------------------------------------------

    def difficulty(self, bins: int = 10) -> DifficultyReport:
        """With predictions, the histogram is of the predicted pass rates (what the weights
        are of); the zones stay the counts'."""
        rates = None if self._predicted is None else self.pass_rates_of(np.arange(self.n_problems))
        return difficulty_report(
            self._attempts,
            self._successes,
            self._tree.leaves[: self.n_problems],
            self._n_eligible_uniform(),
            bins,
            rates,
        )

    def summary(self) -> Summary:
        """What difficulty() reports but the histogram, plus the mean pass rate of seen
        problems, in O(1) from running totals (a history snapshot after every step)."""
        return self._totals.summary(self.total_weight, self._n_eligible_uniform())

    def rollout_queue(
        self, limit: int, current_step: int, stale_after: int
    ) -> list[tuple[int, str]]:
        """(problem_id, reason) pairs: unseen, then stale oldest first, then most uncertain."""
        groups = rollout_queue_slots(
            self.estimator,
            self._attempts,
            self._successes,
            self._last_step,
            limit,
            current_step,
            stale_after,
        )
        return [(int(self._ids[s]), reason) for slots, reason in groups for s in slots]
