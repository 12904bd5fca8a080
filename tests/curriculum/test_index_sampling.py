"""SamplingIndex.sample: distributions (exact enumeration + chi-square), edge cases, determinism."""

from collections import Counter

import numpy as np
import pytest
from sampling_stats import chisquare_pvalue, successive_sampling_probs, unordered

from service.curriculum import Estimator, EstimatorConfig, KernelConfig, SamplingIndex
from service.curriculum import index as index_module

EMPIRICAL = Estimator(KernelConfig(), EstimatorConfig())
POSTERIOR = Estimator(KernelConfig(), EstimatorConfig(kind="posterior"))
P_MIN = 1e-3


def pool(successes_of: dict[int, tuple[float, float]], ids=range(100, 108), est=EMPIRICAL):
    """An index over `ids`; successes_of maps id -> (attempts, successes); others unseen."""
    index = SamplingIndex(np.array(list(ids)), est)
    keys = np.array(list(successes_of))
    att = np.array([v[0] for v in successes_of.values()])
    succ = np.array([v[1] for v in successes_of.values()])
    index.set_stats(keys, att, succ, np.zeros(len(keys), dtype=np.int64))
    return index


# Six positive weights k(8-k)/64 spread 7..16, plus a mastered and an unseen problem (weight 0).
SPREAD = {100: (8, 1), 101: (8, 2), 102: (8, 3), 103: (8, 4), 104: (8, 6), 105: (8, 7), 106: (8, 8)}


def weights_of(index: SamplingIndex) -> dict[int, float]:
    ids = np.arange(100, 108)
    w = index.stats_of(ids)["weight"]
    return {int(i): float(x) for i, x in zip(ids, w, strict=True) if x > 0}


def draw_counter(index, size, draws, mode="proportional", ordered=True, seed=0):
    rng = np.random.default_rng(seed)
    seen = Counter()
    for _ in range(draws):
        ids = tuple(int(i) for i in index.sample(size, rng, mode).problem_ids)
        assert len(set(ids)) == len(ids) == size
        seen[ids if ordered else frozenset(ids)] += 1
    return seen


@pytest.mark.parametrize("size", [2, 3])
def test_proportional_matches_successive_sampling_ordered(size):
    index = pool(SPREAD)
    probs = successive_sampling_probs(weights_of(index), size)
    draws = 8000
    assert chisquare_pvalue(draw_counter(index, size, draws), probs, draws) > P_MIN


def test_proportional_exact_fallback_for_large_share_matches_successive_sampling():
    index = pool(SPREAD)  # size 4 of 6 available: Efraimidis–Spirakis keys
    probs = successive_sampling_probs(weights_of(index), 4)
    draws = 6000
    assert chisquare_pvalue(draw_counter(index, 4, draws), probs, draws) > P_MIN


CONCENTRATED = {100: (8, 4), **{i: (10_000, 101) for i in range(101, 106)}}


@pytest.mark.parametrize("max_rounds", [index_module.MAX_ROUNDS, 1])
def test_concentrated_weights_need_several_rounds_and_stay_exact(monkeypatch, max_rounds):
    # One problem holds ~83% of the mass, so rounds must condition on earlier picks; with
    # max_rounds=1 the remainder goes through the exact fallback instead.
    monkeypatch.setattr(index_module, "MAX_ROUNDS", max_rounds)
    index = pool(CONCENTRATED)
    probs = successive_sampling_probs(weights_of(index), 3)
    draws = 8000
    assert chisquare_pvalue(draw_counter(index, 3, draws), probs, draws) > P_MIN
    # Temporary zeroing during a call must leave the tree exactly as it was.
    before = index._tree.tree.copy()
    index.sample(3, np.random.default_rng(5))
    np.testing.assert_array_equal(index._tree.tree, before)


@pytest.mark.parametrize("size,ordered", [(2, True), (3, True), (5, False)])
def test_uniform_mode_is_uniform_over_seen_problems(size, ordered):
    index = pool(SPREAD)  # 7 seen (incl. the mastered one), 1 unseen
    seen = [100, 101, 102, 103, 104, 105, 106]
    probs = successive_sampling_probs(dict.fromkeys(seen, 1.0), size)
    probs = probs if ordered else unordered(probs)
    draws = 6000
    observed = draw_counter(index, size, draws, "uniform", ordered)
    assert chisquare_pvalue(observed, probs, draws) > P_MIN


def test_uniform_rounds_path_is_uniform_across_blocks_of_seen_slots():
    # 20 seen problems scattered over 200 slots (4 blocks of 64): size 2 is a small share, so
    # this goes through the block-count descent and with-replacement rounds, not a permutation.
    seen = {i: (8, 4) for i in range(1000, 1200, 10)}
    index = pool(seen, ids=range(1000, 1200))
    probs = successive_sampling_probs(dict.fromkeys(seen, 1.0), 2)
    draws = 8000
    observed = draw_counter(index, 2, draws, "uniform")
    assert chisquare_pvalue(observed, probs, draws) > P_MIN


def test_uniform_mode_over_all_problems_for_posterior():
    index = pool({100: (8, 4)}, ids=range(100, 106), est=POSTERIOR)
    probs = successive_sampling_probs(dict.fromkeys(range(100, 106), 1.0), 2)
    draws = 6000
    observed = draw_counter(index, 2, draws, "uniform")
    assert chisquare_pvalue(observed, probs, draws) > P_MIN


def test_uniform_loss_weights_are_weight_over_mean_eligible_weight():
    index = pool(SPREAD)
    result = index.sample(7, np.random.default_rng(0), "uniform")
    w = weights_of(index)
    mean = sum(w.values()) / 7  # 7 seen problems, the mastered one has weight 0
    expected = [w.get(int(i), 0.0) / mean for i in result.problem_ids]
    np.testing.assert_allclose(result.loss_weights, expected)
    assert result.available == 7


def test_proportional_result_fields():
    index = pool(SPREAD)
    result = index.sample(3, np.random.default_rng(0))
    w = weights_of(index)
    np.testing.assert_array_equal(result.loss_weights, np.ones(3))
    np.testing.assert_allclose(result.weights, [w[int(i)] for i in result.problem_ids])
    rates = {i: s / n for i, (n, s) in SPREAD.items()}
    np.testing.assert_allclose(result.pass_rates, [rates[int(i)] for i in result.problem_ids])
    assert result.available == 6
    assert set(result.problem_ids.tolist()) <= set(w)


@pytest.mark.parametrize("mode", ["proportional", "uniform"])
def test_same_seed_same_state_gives_identical_batch(mode):
    index = pool(SPREAD, ids=range(100, 5000))
    a = index.sample(4, np.random.default_rng(42), mode)
    b = index.sample(4, np.random.default_rng(42), mode)
    np.testing.assert_array_equal(a.problem_ids, b.problem_ids)
    np.testing.assert_array_equal(a.loss_weights, b.loss_weights)


@pytest.mark.parametrize("mode,available", [("proportional", 6), ("uniform", 7)])
def test_fewer_eligible_than_size_returns_all_of_them(mode, available):
    index = pool(SPREAD)
    result = index.sample(50, np.random.default_rng(0), mode)
    assert result.available == available
    assert len(result.problem_ids) == available
    assert len(set(result.problem_ids.tolist())) == available


@pytest.mark.parametrize("mode", ["proportional", "uniform"])
def test_nothing_eligible_returns_empty(mode):
    index = pool({100: (8, 8), 101: (8, 0)}) if mode == "proportional" else pool({})
    result = index.sample(3, np.random.default_rng(0), mode)
    assert result.available == 0
    assert result.problem_ids.size == 0 and result.problem_ids.dtype == np.int64


def test_large_pool_draws_are_distinct_and_eligible():
    rng = np.random.default_rng(3)
    n = 20_000
    ids = np.arange(n) * 3 + 7
    att = np.full(n, 8.0)
    succ = rng.binomial(8, rng.random(n)).astype(float)
    index = SamplingIndex.build(ids, EMPIRICAL, ids, att, succ, np.zeros(n, np.int64))
    for mode in ("proportional", "uniform"):
        result = index.sample(512, rng, mode)
        assert len(np.unique(result.problem_ids)) == 512
        if mode == "proportional":
            assert np.all(result.weights > 0)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError):
        pool(SPREAD).sample(2, np.random.default_rng(0), "greedy")
