"""curriculum.draws: exclusion (exact: successive sampling over the rest) and the fill policy."""

from collections import Counter

import numpy as np
from sampling_stats import chisquare_pvalue, successive_sampling_probs

from service.curriculum import Estimator, EstimatorConfig, KernelConfig, SamplingIndex
from service.curriculum.draws import SOURCES, draw, queue_excluding

EMPIRICAL = Estimator(KernelConfig(), EstimatorConfig())
P_MIN = 1e-3
# id -> (attempts, successes): 100..104 frontier with different weights, 105 mastered,
# 106 intractable, 107..109 unseen.
STATS = {100: (8, 1), 101: (8, 2), 102: (8, 3), 103: (8, 4), 104: (8, 6), 105: (8, 8), 106: (8, 0)}


def index() -> SamplingIndex:
    built = SamplingIndex(np.arange(100, 110), EMPIRICAL)
    keys = np.array(list(STATS))
    att = np.array([v[0] for v in STATS.values()], dtype=float)
    succ = np.array([v[1] for v in STATS.values()], dtype=float)
    built.set_stats(keys, att, succ, np.zeros(len(keys), dtype=np.int64))
    return built


def test_excluded_problems_never_come_and_the_rest_follow_successive_sampling():
    idx = index()
    weights = {i: a / 8 * (1 - a / 8) for i, a in ((100, 1), (101, 2), (102, 3), (103, 4))}
    probs = successive_sampling_probs(weights, 2)  # 104 excluded
    rng = np.random.default_rng(0)
    observed = Counter()
    for _ in range(3000):
        result = draw(idx, 2, rng, "proportional", exclude=np.array([104, 999]))
        observed[tuple(result.problem_ids.tolist())] += 1
        assert result.available == 4  # five positive weights, one excluded
    assert chisquare_pvalue(observed, probs, 3000) > P_MIN


def test_fill_tops_up_with_unseen_then_any_and_says_from_where():
    idx = index()
    result = draw(idx, 10, np.random.default_rng(1), "proportional", fill="unseen_then_uniform")
    ids = result.problem_ids.tolist()
    codes = [SOURCES[c] for c in result.sources.tolist()]
    assert len(ids) == 10 == len(set(ids))
    assert set(ids[:5]) == {100, 101, 102, 103, 104} and codes[:5] == ["drawn"] * 5
    assert set(ids[5:8]) == {107, 108, 109} and codes[5:8] == ["fill_unseen"] * 3
    assert set(ids[8:]) == {105, 106} and codes[8:] == ["fill_uniform"] * 2
    assert result.loss_weights.tolist() == [1.0] * 5 + [0.0] * 5
    assert np.isnan(result.pass_rates[5:8]).all()
    assert sorted(result.pass_rates[8:].tolist()) == [0.0, 1.0]  # intractable, mastered
    # "unseen" stops there; excluded problems are never used as filler either.
    result = draw(idx, 10, np.random.default_rng(1), "uniform", fill="unseen", exclude=[108])
    assert 108 not in result.problem_ids and len(result.problem_ids) == 9


def test_a_plain_draw_is_the_index_sample_unchanged():
    idx = index()
    plain = draw(idx, 3, np.random.default_rng(7), "proportional")
    sample = idx.sample(3, np.random.default_rng(7), "proportional")
    assert plain.problem_ids.tolist() == sample.problem_ids.tolist() and plain.sources is None


def test_queue_excluding_skips_leased_problems_and_keeps_the_order():
    idx = index()
    full = idx.rollout_queue(10, 0, 50)
    skipped = queue_excluding(idx, 10, 0, 50, np.array([107, 101]))
    assert skipped == [entry for entry in full if entry[0] not in (107, 101)]
    assert queue_excluding(idx, 2, 0, 50, np.array([107])) == [(108, "unseen"), (109, "unseen")]
