"""SamplingIndex state: incremental updates equal a bulk build, growth, lookups, summaries."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.curriculum import Estimator, EstimatorConfig, KernelConfig, SamplingIndex

EMPIRICAL = Estimator(KernelConfig(), EstimatorConfig())
POSTERIOR = Estimator(KernelConfig(2.0, 1.0), EstimatorConfig(kind="posterior"))

row = st.tuples(
    st.integers(0, 199),  # which problem (index into the id list)
    st.integers(0, 8),  # attempts (0 = reset to unseen)
    st.integers(0, 8),  # successes (clipped to attempts)
    st.integers(-1, 50),  # last_step
)


def assert_same_state(a: SamplingIndex, b: SamplingIndex) -> None:
    for name in ("_ids", "_attempts", "_successes", "_last_step"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a._tree.tree, b._tree.tree)
    np.testing.assert_array_equal(a._seen.tree, b._seen.tree)
    assert (a.n_problems, a.n_seen, a.n_positive) == (b.n_problems, b.n_seen, b.n_positive)
    assert a.n_positive == np.count_nonzero(a._tree.leaves > 0)
    assert a.n_seen == np.count_nonzero(a._attempts > 0)
    assert a.total_weight == b.total_weight


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 200),
    batches=st.lists(st.lists(row, min_size=1, max_size=30), min_size=1, max_size=5),
    posterior=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_incremental_set_stats_equals_full_build(n, batches, posterior, seed):
    est = POSTERIOR if posterior else EMPIRICAL
    ids = np.arange(n, dtype=np.int64) * 5 + 11
    live = SamplingIndex(ids, est)
    final: dict[int, tuple[int, int, int]] = {}
    for batch in batches:
        rows = [(int(ids[i % n]), a, min(k, a), t) for i, a, k, t in batch]
        live.set_stats(*(np.array(col) for col in zip(*rows, strict=True)))
        for pid, a, k, t in rows:
            final[pid] = (a, k, t)
    stat_ids = np.array(list(final))
    cols = np.array(list(final.values())).T
    built = SamplingIndex.build(ids, est, stat_ids, cols[0], cols[1], cols[2])
    assert_same_state(live, built)
    for mode in ("proportional", "uniform"):
        a = live.sample(7, np.random.default_rng(seed), mode)
        b = built.sample(7, np.random.default_rng(seed), mode)
        np.testing.assert_array_equal(a.problem_ids, b.problem_ids)
        np.testing.assert_array_equal(a.loss_weights, b.loss_weights)


def test_add_problems_grows_and_matches_a_build():
    ids = np.arange(1, 70, dtype=np.int64)  # capacity 128 for the weight tree
    index = SamplingIndex(ids, EMPIRICAL)
    index.set_stats(np.array([1, 69]), np.array([8.0, 8.0]), np.array([4.0, 2.0]), [3, 4])
    new_ids = np.arange(70, 400, dtype=np.int64)
    index.add_problems(np.concatenate([new_ids, [1, 69]]))  # known ids are ignored
    assert index.n_problems == 399
    index.set_stats(np.array([399]), np.array([8.0]), np.array([1.0]), [5])
    all_ids = np.arange(1, 400)
    built = SamplingIndex.build(
        all_ids, EMPIRICAL, np.array([1, 69, 399]), [8.0, 8.0, 8.0], [4.0, 2.0, 1.0], [3, 4, 5]
    )
    assert_same_state(index, built)
    with pytest.raises(ValueError):
        index.add_problems(np.array([0]))  # would not keep slots in id order


def test_add_problems_gives_posterior_prior_weight():
    index = SamplingIndex(np.array([1, 2]), POSTERIOR)
    prior = POSTERIOR.unseen_weight()
    index.add_problems(np.array([5, 9]))
    assert index.n_positive == 4
    assert index.total_weight == pytest.approx(4 * prior)
    assert index.sample(10, np.random.default_rng(0)).available == 4


def test_slots_and_stats_lookup():
    index = SamplingIndex(np.array([30, 10, 20]), EMPIRICAL)  # unsorted input gets sorted
    np.testing.assert_array_equal(index.slots_of(np.array([10, 20, 30, 15, 99])), [0, 1, 2, -1, -1])
    index.set_stats(np.array([20]), np.array([4.0]), np.array([1.0]), np.array([7]))
    stats = index.stats_of(np.array([20, 10]))
    np.testing.assert_array_equal(stats["attempts"], [4.0, 0.0])
    np.testing.assert_array_equal(stats["last_step"], [7, -1])
    np.testing.assert_allclose(stats["pass_rate"], [0.25, np.nan])
    np.testing.assert_allclose(stats["weight"], [0.1875, 0.0])
    np.testing.assert_array_equal(stats["zone"], [2, 0])
    with pytest.raises(KeyError):
        index.stats_of(np.array([11]))
    with pytest.raises(KeyError):
        index.set_stats(np.array([11]), np.array([1.0]), np.array([1.0]), np.array([0]))


def test_memory_stays_under_64_bytes_per_problem():
    for n in (1000, 1025, 65_537):  # just past powers of two: worst case for the trees
        index = SamplingIndex(np.arange(n), EMPIRICAL)
        assert index.nbytes / n <= 64, (n, index.nbytes / n)


def test_difficulty_report():
    index = SamplingIndex(np.arange(10), EMPIRICAL)
    index.set_stats(
        np.array([0, 1, 2, 3, 4]),
        np.array([8.0, 8.0, 8.0, 8.0, 8.0]),
        np.array([0.0, 2.0, 4.0, 4.0, 8.0]),
        np.zeros(5, dtype=np.int64),
    )
    report = index.difficulty(bins=4)
    assert report["problems"] == 10
    assert report["zones"] == {"unseen": 5, "intractable": 1, "frontier": 3, "mastered": 1}
    assert report["histogram"]["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert report["histogram"]["counts"] == [1, 1, 2, 1]
    weights = np.array([0.1875, 0.25, 0.25])
    assert report["mean_weight"] == pytest.approx(weights.sum() / 5)  # over the 5 seen
    q = weights / weights.sum()
    assert report["effective_problems"] == pytest.approx(np.exp(-(q * np.log(q)).sum()))
    empty = SamplingIndex(np.arange(3), EMPIRICAL).difficulty(2)
    assert empty["mean_weight"] == 0.0 and empty["effective_problems"] == 0.0


def test_rollout_queue_orders_unseen_then_stale_then_uncertain():
    index = SamplingIndex(np.arange(100, 110), EMPIRICAL)
    seen = np.array([100, 102, 104, 105, 106, 107, 108, 109])
    att = np.array([8.0, 8.0, 8.0, 2.0, 64.0, 8.0, 8.0, 8.0])
    succ = np.array([4.0, 0.0, 8.0, 1.0, 32.0, 4.0, 8.0, 1.0])
    step = np.array([1, 9, 2, 10, 10, 10, 10, 10])
    index.set_stats(seen, att, succ, step)
    queue = index.rollout_queue(limit=7, current_step=10, stale_after=5)
    assert queue[:2] == [(101, "unseen"), (103, "unseen")]
    # Stale by information: a fresh round moves the weight of 8-of-8 (104, where w is steep)
    # more than that of 4-of-8 (100, where w is flat), though 100's round is older.
    assert queue[2:4] == [(104, "stale"), (100, "stale")]
    # The rest by information too: 0 of 8 (102, a step older) and 1 of 8 (109) and 8 of 8
    # (108), where w is steep, before 1 of 2 (105), 4 of 8 (107) and 32 of 64 (106).
    assert queue[4:] == [(102, "uncertain"), (109, "uncertain"), (108, "uncertain")]
    rest = [pid for pid, _ in index.rollout_queue(limit=10, current_step=10, stale_after=5)]
    assert rest[4:] == [102, 109, 108, 105, 107, 106]
    assert len(index.rollout_queue(limit=3, current_step=10, stale_after=5)) == 3
    assert index.rollout_queue(limit=0, current_step=10, stale_after=5) == []


def recomputed_summary(index: SamplingIndex) -> dict:
    """What summary() must equal: the O(N) difficulty report and mean pass rate."""
    report = index.difficulty(bins=1)
    arrays = index.arrays()
    seen = arrays.attempts > 0
    rates = np.clip(arrays.successes[seen] / arrays.attempts[seen], 0.0, 1.0)
    return {
        "zones": report["zones"],
        "mean_pass_rate": float(rates.mean()) if seen.any() else None,
        "mean_weight": report["mean_weight"],
        "effective_problems": report["effective_problems"],
    }


def assert_summary_matches(index: SamplingIndex) -> None:
    fast, slow = index.summary(), recomputed_summary(index)
    assert fast["zones"] == slow["zones"]
    if slow["mean_pass_rate"] is None:
        assert fast["mean_pass_rate"] is None
    else:
        assert fast["mean_pass_rate"] == pytest.approx(slow["mean_pass_rate"], rel=1e-9, abs=1e-12)
    assert fast["mean_weight"] == pytest.approx(slow["mean_weight"], rel=1e-9, abs=1e-12)
    assert fast["effective_problems"] == pytest.approx(
        slow["effective_problems"], rel=1e-9, abs=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 200),
    batches=st.lists(st.lists(row, min_size=1, max_size=30), min_size=1, max_size=6),
    grow=st.integers(0, 40),
    posterior=st.booleans(),
    half_counts=st.booleans(),
)
def test_running_summary_equals_the_full_pass_after_any_updates(
    n, batches, grow, posterior, half_counts
):
    """The O(1) snapshot summary (running totals) stays equal to an O(N) recomputation
    through updates, resets to unseen, duplicates, growth and fractional (decayed) counts."""
    est = POSTERIOR if posterior else EMPIRICAL
    ids = np.arange(n, dtype=np.int64) * 5 + 11
    index = SamplingIndex(ids, est)
    assert_summary_matches(index)
    scale = 0.37 if half_counts else 1.0
    for i, batch in enumerate(batches):
        rows = [(int(ids[j % n]), a * scale, min(k, a) * scale, t) for j, a, k, t in batch]
        index.set_stats(*(np.array(col) for col in zip(*rows, strict=True)))
        assert_summary_matches(index)
        if i == 0 and grow:
            index.add_problems(ids[-1] + 1 + np.arange(grow))
            assert_summary_matches(index)
    built = SamplingIndex.build(
        index.problem_ids,
        est,
        index.arrays().ids,
        index.arrays().attempts.copy(),
        index.arrays().successes.copy(),
        index.arrays().last_step.astype(np.int64),
    )
    assert_summary_matches(built)
