"""The rollout queue ranks stale problems by what a fresh round could teach
(information.queue_priority), not by age and id: hard problems (0 of 8 at the start) that the
student learns later come back and are re-estimated.

The scenario of issue 26: 300 level-3 problems (p fixed in [0.2, 0.8]) and 100 level-4 ones
(p = 0 until step 100, then 0.4), all read once (K = 8) at step 0, window 'latest'; every 25
steps the head of the queue (50 problems) is rolled out again. The old rule (stale oldest
first, ties by id) took level 3 first whenever the ages tied.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.curriculum import Estimator, EstimatorConfig, KernelConfig, SamplingIndex
from service.curriculum.information import FreshRound, queue_priority, stale_priority
from service.curriculum.summaries import smallest_k

LEVEL3, LEVEL4, K, EVERY, HEAD = 300, 100, 8, 25, 50
LATEST = Estimator(KernelConfig(), EstimatorConfig(window="latest"))


def true_rates(ids: np.ndarray, step: int, level3: np.ndarray) -> np.ndarray:
    hard = np.where(step >= 100, 0.4, 0.0)
    return np.where(ids < LEVEL3, level3[np.minimum(ids, LEVEL3 - 1)], hard)


def by_age_then_id(index: SamplingIndex, step: int) -> np.ndarray:
    """The rule before issue 26: the stale problems, oldest round first, ties by id."""
    arrays = index.arrays()
    stale = np.flatnonzero(step - arrays.last_step.astype(np.int64) >= EVERY)
    return arrays.ids[stale[smallest_k(arrays.last_step[stale], HEAD)]]


def simulate(seed: int, old_rule: bool = False) -> dict[int, tuple[int, float]]:
    """Per refresh step: (level-4 problems with a round at step >= 100, their mean p_hat)."""
    rng = np.random.default_rng(seed)
    level3 = rng.uniform(0.2, 0.8, LEVEL3)
    ids = np.arange(LEVEL3 + LEVEL4)
    index = SamplingIndex(ids, LATEST)
    first = rng.binomial(K, true_rates(ids, 0, level3)).astype(float)
    index.set_stats(ids, np.full(len(ids), float(K)), first, np.zeros(len(ids), dtype=np.int64))
    last_round = np.zeros(len(ids), dtype=np.int64)
    seen: dict[int, tuple[int, float]] = {}
    for step in range(EVERY, 251, EVERY):
        if old_rule:
            head = by_age_then_id(index, step)
        else:
            queue = index.rollout_queue(HEAD, step, stale_after=EVERY)
            assert {reason for _, reason in queue} == {"stale"}
            head = np.array([pid for pid, _ in queue])
        fresh = rng.binomial(K, true_rates(head, step, level3)).astype(float)
        index.set_stats(head, np.full(len(head), float(K)), fresh, np.full(len(head), step))
        last_round[head] = step
        hard = ids[LEVEL3:]
        estimate = float(np.mean(index.stats_of(hard)["pass_rate"]))
        seen[step] = (int(np.count_nonzero(last_round[hard] >= 100)), estimate)
    return seen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_problems_learnt_later_are_re_estimated(seed):
    seen = simulate(seed)
    # Before step 100 the 0-of-8 problems are re-read (they rank first) and still read 0.
    assert seen[75][1] == 0.0
    # The first two refreshes from step 100 re-read nearly every level-4 problem (a few
    # compete with level-3 rounds that read 0 or 8 of 8 by chance), the third all of them...
    assert seen[125][0] >= 0.95 * LEVEL4 and seen[150][0] == LEVEL4
    # ...so their estimates track the student (true p = 0.4) from there on.
    for step in (125, 150, 250):
        assert seen[step][1] == pytest.approx(0.4, abs=0.08)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_old_rule_left_them_at_zero_for_longer(seed):
    """The counterfactual: by age then id, the 300 level-3 problems (lower ids, tied ages)
    fill the head first, and at step 150 no level-4 problem has been re-read since step 100."""
    old, new = simulate(seed, old_rule=True), simulate(seed)
    assert old[150] == (0, 0.0)
    assert new[150][0] == LEVEL4


def simulate_experiment(seed: int, old_rule: bool) -> tuple[int, int]:
    """The proportions of `make experiment`'s pool (docs/results.md): level 3's 4,000 problems
    read 2,659 frontier, 1,147 p = 0 and 194 p = 1 at step 0, level 4's 4,000 all p = 0
    (learnable from step 100 here, p = 0.3); 256 queue-head problems re-read every 25 steps,
    stale after 50 (the service's default for window 'latest'). Returns (level-4 problems
    re-read at all, re-read from step 100 on)."""
    rng = np.random.default_rng(seed)
    level3 = np.concatenate([rng.uniform(0.1, 0.9, 2659), np.zeros(1147), np.ones(194)])
    ids = np.arange(8000)

    def truth(problems: np.ndarray, step: int) -> np.ndarray:
        return np.where(problems < 4000, level3[np.minimum(problems, 3999)], 0.3 * (step >= 100))

    index = SamplingIndex(ids, LATEST)
    first = rng.binomial(K, truth(ids, 0)).astype(float)
    index.set_stats(ids, np.full(8000, float(K)), first, np.zeros(8000, dtype=np.int64))
    last_round = np.zeros(8000, dtype=np.int64)
    for step in range(25, 251, 25):
        if old_rule:
            arrays = index.arrays()
            stale = np.flatnonzero(step - arrays.last_step.astype(np.int64) >= 50)
            head = stale[smallest_k(arrays.last_step[stale], 256)]
        else:
            head = np.array([pid for pid, _ in index.rollout_queue(256, step, stale_after=50)])
        fresh = rng.binomial(K, truth(head, step)).astype(float)
        index.set_stats(head, np.full(len(head), float(K)), fresh, np.full(len(head), step))
        last_round[head] = step
    level4 = last_round[4000:]
    return int(np.count_nonzero(level4 > 0)), int(np.count_nonzero(level4 >= 100))


def test_the_experiments_level_4_is_re_estimated():
    """Issue 26's finding, in the experiment's proportions: by age then id, no level-4
    problem was re-read in 250 steps. By information, level 4 (all 0 of 8, the oldest rounds)
    takes most of the budget, and more than 1,000 of its problems are re-read after they
    became learnable."""
    assert simulate_experiment(0, old_rule=True) == (0, 0)
    anywhere, after_learning = simulate_experiment(0, old_rule=False)
    assert anywhere > 1500 and after_learning > 1000


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 64),
    k=st.integers(0, 64),
    ages=st.lists(st.floats(0, 5000), min_size=2, max_size=12),
    half_life=st.sampled_from([5.0, 25.0, 50.0]),
)
def test_an_older_round_never_ranks_below_the_same_round_made_fresher(n, k, ages, half_life):
    ages = np.sort(np.asarray(ages))
    attempts, successes = np.full(len(ages), float(n)), np.full(len(ages), float(min(k, n)))
    priority = stale_priority(
        attempts, successes, ages, FreshRound(KernelConfig(), half_life=half_life)
    )
    assert np.all(np.diff(priority) >= 0)
    # at age 0 (a grid point) it is the raw priority: the envelope only lifts older rounds
    fresh = queue_priority(attempts[:1], successes[:1], np.zeros(1), FreshRound(KernelConfig()))
    at_zero = stale_priority(attempts[:1], successes[:1], np.zeros(1), FreshRound(KernelConfig()))
    assert at_zero[0] == pytest.approx(fresh[0])
