"""Thompson batches and the epsilon share (curriculum.draws._exploring_draw): the same inputs
give the same batch, and over many seeds the draws follow the stated distributions."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sampling_stats import chisquare_pvalue, successive_sampling_probs

from service.curriculum import Estimator, EstimatorConfig, KernelConfig, SamplingIndex
from service.curriculum.draws import SOURCE_NAMES, draw, source_counts
from service.curriculum.exploration import draw_rng

EMPIRICAL = Estimator(KernelConfig(), EstimatorConfig())
P_MIN = 1e-3
# 100..104 frontier, 105 mastered, 106 intractable, 107..109 unseen (as test_draws.py).
STATS = {100: (8, 1), 101: (8, 2), 102: (8, 3), 103: (8, 4), 104: (8, 6), 105: (8, 8), 106: (8, 0)}
LEFT_OUT = (105, 106, 107, 108, 109)  # weight 0 or no evidence


def index(estimator: Estimator = EMPIRICAL) -> SamplingIndex:
    built = SamplingIndex(np.arange(100, 110), estimator)
    keys = np.array(list(STATS))
    att = np.array([v[0] for v in STATS.values()], dtype=float)
    succ = np.array([v[1] for v in STATS.values()], dtype=float)
    built.set_stats(keys, att, succ, np.zeros(len(keys), dtype=np.int64))
    return built


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**64 - 1),
    key=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    version=st.integers(0, 10**6),
    mode=st.sampled_from(["thompson", "proportional", "uniform"]),
    epsilon=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    fill=st.sampled_from(["none", "unseen_then_uniform"]),
)
def test_same_seed_key_and_version_give_the_same_batch(seed, key, version, mode, epsilon, fill):
    idx = index()
    first = draw(idx, 6, draw_rng(seed, key, version), mode, fill=fill, epsilon=epsilon)
    again = draw(index(), 6, draw_rng(seed, key, version), mode, fill=fill, epsilon=epsilon)
    for name in ("problem_ids", "weights", "loss_weights"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert len(set(first.problem_ids.tolist())) == len(first.problem_ids)


def test_another_version_or_key_draws_afresh():
    batches = {
        tuple(draw(index(), 3, draw_rng(7, key, version), "thompson").problem_ids.tolist())
        for key in (None, "step-1", "step-2")
        for version in range(10)
    }
    assert len(batches) > 10  # 30 streams, nearly all batches different
    assert draw_rng(7, "k", 1).random() != draw_rng(7, "k", 2).random()


def thompson_first_pick_law(idx: SamplingIndex, trials: int, seed: int) -> np.ndarray:
    """E[w~_i / sum w~] over the posterior draws, by Monte Carlo independent of the sampler."""
    rng = np.random.default_rng(seed)
    arrays = idx.arrays()
    n, k = arrays.attempts, arrays.successes
    p = rng.beta(1.0 + k, 1.0 + n - k, size=(trials, len(n)))
    w = p * (1 - p)
    return (w / w.sum(axis=1, keepdims=True)).mean(axis=0)


def test_thompson_first_pick_follows_the_posterior_law():
    """One item per batch: problem i comes with probability E[w(p~_i) / sum_j w(p~_j)],
    p~ ~ Beta(1 + k, 1 + n - k): unseen, mastered and intractable problems too."""
    idx = index()
    trials = 20_000
    picks = Counter(
        int(draw(idx, 1, draw_rng(seed, None, 0), "thompson").problem_ids[0])
        for seed in range(trials)
    )
    law = thompson_first_pick_law(idx, 200_000, seed=1)
    probs = {pid: float(q) for pid, q in zip(range(100, 110), law, strict=True)}
    assert chisquare_pvalue(picks, probs, trials) > P_MIN
    for pid in LEFT_OUT:  # the weights' mean would never draw these
        assert picks[pid] > 0.02 * trials


def test_epsilon_share_is_uniform_over_the_left_out_and_the_rest_is_weighted():
    """size 4, epsilon 0.5: 2 items uniformly (without replacement) among the 5 left-out
    problems, loss weight 0; 2 by successive sampling ∝ weight among the frontier."""
    idx = index()
    trials = 6000
    explored, drawn = Counter(), Counter()
    for seed in range(trials):
        result = draw(idx, 4, draw_rng(seed, None, 3), "proportional", epsilon=0.5)
        names = [SOURCE_NAMES[c] for c in result.sources.tolist()]
        assert names == ["drawn", "drawn", "explored", "explored"]
        assert result.loss_weights.tolist() == [1.0, 1.0, 0.0, 0.0]
        assert source_counts(result) == {
            "drawn": 2,
            "fill_unseen": 0,
            "fill_uniform": 0,
            "explored": 2,
        }
        ids = result.problem_ids.tolist()
        explored[frozenset(ids[2:])] += 1
        drawn[tuple(ids[:2])] += 1
    pairs = {frozenset((a, b)): 0.1 for a in LEFT_OUT for b in LEFT_OUT if a < b}
    assert chisquare_pvalue(explored, pairs, trials) > P_MIN
    weights = {i: k / n * (1 - k / n) for i, (n, k) in STATS.items() if 0 < k < n}
    assert chisquare_pvalue(drawn, successive_sampling_probs(weights, 2), trials) > P_MIN


def test_epsilon_respects_exclusion_the_pool_size_and_the_fill():
    idx = index()
    rng = draw_rng(3, None, 0)
    result = draw(idx, 10, rng, "proportional", epsilon=1.0, exclude=np.array([107, 108]))
    # the whole pool but the excluded (3 < 10 asked), the rest of the batch by weight
    names = [SOURCE_NAMES[c] for c in result.sources.tolist()]
    assert names == ["drawn"] * 5 + ["explored"] * 3
    assert sorted(result.problem_ids[5:].tolist()) == [105, 106, 109]
    result = draw(idx, 10, rng, "uniform", epsilon=0.2, fill="unseen_then_uniform")
    names = [SOURCE_NAMES[c] for c in result.sources.tolist()]
    assert len(result.problem_ids) == 10 == len(set(result.problem_ids.tolist()))
    assert names.count("explored") == 2 and names[:7].count("drawn") == 7
    assert set(result.problem_ids.tolist()) == set(range(100, 110))


def test_a_thompson_batch_alone_reads_as_a_plain_one():
    result = draw(index(), 3, draw_rng(1, None, 0), "thompson")
    assert result.sources is None and result.loss_weights.tolist() == [1.0, 1.0, 1.0]
    assert result.available == 10  # every posterior draw has a positive weight
    # the weights reported are the run's (posterior mean of the estimator), not the draw's
    np.testing.assert_array_equal(result.weights, index().stats_of(result.problem_ids)["weight"])


@pytest.mark.parametrize("mode", ["proportional", "uniform"])
def test_without_the_new_fields_a_draw_is_what_it_was(mode):
    """epsilon 0 and mode proportional/uniform: draw() never reaches _exploring_draw."""
    plain = draw(index(), 4, np.random.default_rng(5), mode)
    sample = index().sample(4, np.random.default_rng(5), mode)
    np.testing.assert_array_equal(plain.problem_ids, sample.problem_ids)
    assert plain.sources is None and not plain.exploring


def test_thompson_draws_prior_evidence():
    """A prior is evidence for the posterior draw: a problem with a prior of p = 0.5 worth
    1000 attempts is drawn about as often as w(0.5) says."""
    idx = SamplingIndex(np.arange(2), EMPIRICAL)
    idx.set_priors(np.array([0]), np.array([1000.0]), np.array([500.0]))
    picks = Counter(
        int(draw(idx, 1, draw_rng(s, None, 0), "thompson").problem_ids[0]) for s in range(4000)
    )
    law = thompson_first_pick_law(idx, 200_000, seed=2)
    assert picks[0] / 4000 == pytest.approx(law[0], abs=0.03)
