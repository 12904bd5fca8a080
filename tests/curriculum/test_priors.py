"""Per-problem priors in the core: pseudo-counts added to a problem's counts, whatever the
order they and the outcomes arrive in (curriculum/priors.py, SamplingIndex.set_priors)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.curriculum import Estimator, EstimatorConfig, KernelConfig, SamplingIndex
from service.curriculum.priors import from_estimates, profile_counts

EMPIRICAL = Estimator(KernelConfig(), EstimatorConfig())
POSTERIOR = Estimator(KernelConfig(2.0, 1.0), EstimatorConfig(kind="posterior"))

stat_row = st.tuples(st.integers(0, 59), st.integers(0, 8), st.integers(0, 8), st.integers(0, 9))
prior_row = st.tuples(
    st.integers(0, 59), st.floats(0.0, 1.0), st.sampled_from([0.0, 0.5, 2.0, 4.0, 8.0])
)


def assert_same(a: SamplingIndex, b: SamplingIndex) -> None:
    for name in ("_attempts", "_successes", "_last_step"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-12, err_msg=name)
    np.testing.assert_allclose(a._tree.leaves, b._tree.leaves, atol=1e-12)
    assert (a.n_seen, a.n_positive) == (b.n_seen, b.n_positive)
    assert a.summary()["zones"] == b.summary()["zones"]


@settings(max_examples=40, deadline=None)
@given(
    stats=st.lists(stat_row, min_size=0, max_size=40),
    priors=st.lists(prior_row, min_size=0, max_size=40),
    split=st.integers(0, 40),
    posterior=st.booleans(),
)
def test_priors_and_outcomes_in_any_order_equal_a_build(stats, priors, split, posterior):
    """Outcome rows and prior uploads interleaved in any order give the index a build of the
    final rows plus the final priors gives: evidence = own counts + prior."""
    est = POSTERIOR if posterior else EMPIRICAL
    ids = np.arange(60, dtype=np.int64) * 3 + 7
    live = SamplingIndex(ids, est)
    final_stats: dict[int, tuple[int, int, int]] = {}
    final_priors: dict[int, tuple[float, float]] = {}
    events = [("stat", r) for r in stats[:split]] + [("prior", r) for r in priors]
    events += [("stat", r) for r in stats[split:]]
    for kind, row in events:
        if kind == "stat":
            i, a, k, t = row
            live.set_stats(ids[[i]], np.array([a]), np.array([min(k, a)]), np.array([t]))
            final_stats[int(ids[i])] = (a, min(k, a), t)
        else:
            i, rate, weight = row
            n, k = profile_counts(np.array([rate]), np.array([weight]))
            live.set_priors(ids[[i]], n, k)
            final_priors[int(ids[i])] = (float(n[0]), float(k[0]))
    cols = np.array(list(final_stats.values()), dtype=np.float64).reshape(-1, 3).T
    stat_ids = np.array(list(final_stats), dtype=np.int64)
    built = SamplingIndex.build(ids, est, stat_ids, cols[0], cols[1], cols[2].astype(np.int64))
    prior_cols = np.array(list(final_priors.values())).reshape(-1, 2).T
    built.replace_priors(np.array(list(final_priors), dtype=np.int64), *prior_cols)
    assert_same(live, built)
    # and the evidence is exactly own counts + prior
    for pid in ids.tolist():
        a, k, _ = final_stats.get(pid, (0, 0, -1))
        pn, pk = final_priors.get(pid, (0.0, 0.0))
        got = live.stats_of(np.array([pid]))
        assert got["attempts"][0] == pytest.approx(a + pn)
        assert got["successes"][0] == pytest.approx(k + pk)


def test_a_prior_alone_gives_an_estimate_and_clearing_it_restores_unseen():
    index = SamplingIndex(np.arange(4), EMPIRICAL)
    assert index.n_positive == 0  # empirical: nothing to draw before outcomes
    index.set_priors(np.array([1, 2]), np.array([4.0, 8.0]), np.array([1.0, 0.0]))
    stats = index.stats_of(np.array([1, 2, 3]))
    assert stats["pass_rate"][0] == 0.25 and stats["weight"][0] == pytest.approx(0.1875)
    assert stats["zone"].tolist() == [2, 1, 0]  # frontier, intractable (p = 0), unseen
    assert index.n_positive == 1 and index.n_seen == 2
    assert index.sample(3, np.random.default_rng(0)).problem_ids.tolist() == [1]
    # an outcome adds to the prior: (1 + 3) / (4 + 4)
    index.set_stats(np.array([1]), np.array([4.0]), np.array([3.0]), np.array([5]))
    assert index.stats_of(np.array([1]))["pass_rate"][0] == 0.5
    index.replace_priors(np.array([], dtype=np.int64), np.array([]), np.array([]))
    stats = index.stats_of(np.array([1, 2]))
    assert stats["attempts"].tolist() == [4.0, 0.0] and stats["pass_rate"][0] == 0.75
    assert stats["zone"].tolist() == [2, 0] and index.n_seen == 1
    assert index.priors_of(np.array([1, 2]))[0].tolist() == [0.0, 0.0]


def test_priors_survive_new_problems_and_cost_nothing_without_them():
    index = SamplingIndex(np.arange(3), EMPIRICAL)
    index.add_problems(np.array([3]))
    before = index.nbytes  # no prior arrays yet
    index.set_priors(np.array([3]), np.array([2.0]), np.array([1.0]))
    assert index.nbytes == before + 2 * 8 * 4  # two float64 arrays over the 4 slots
    index.add_problems(np.array([4, 5]))
    assert index.priors_of(np.array([3, 4]))[0].tolist() == [2.0, 0.0]


def test_posterior_weight_of_a_prior_is_the_beta_pseudo_count_rule():
    index = SamplingIndex(np.arange(2), POSTERIOR)
    index.set_priors(np.array([0]), np.array([6.0]), np.array([2.0]))
    alone = SamplingIndex(np.arange(2), POSTERIOR)
    alone.set_stats(np.array([0]), np.array([6.0]), np.array([2.0]), np.array([0]))
    np.testing.assert_allclose(index._tree.leaves[:2], alone._tree.leaves[:2])


def test_profile_and_estimates_are_capped_at_n0():
    n, k = profile_counts(np.array([0.5, 0.1]), np.array([16.0, 4.0]), cap=8.0)
    assert n.tolist() == [8.0, 4.0] and k.tolist() == pytest.approx([4.0, 0.4])
    n, k = from_estimates(np.array([64.0, 3.0, 0.0]), np.array([16.0, 3.0, 0.0]), cap=8.0)
    assert n.tolist() == [8.0, 3.0, 0.0] and k.tolist() == [2.0, 3.0, 0.0]
