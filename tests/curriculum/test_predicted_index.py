"""The predicted estimator in the index (SamplingIndex.set_predictions) and fed from the log
(domain/predictions.py): weights are w(p_hat) where a seen problem has a prediction, and the
log folded in request by request gives the predictions a rebuild from the whole log gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.curriculum import Estimator, EstimatorConfig, KernelConfig, SamplingIndex
from service.curriculum.drift import DriftModel
from service.domain.predictions import Drift, observe, predict

PREDICTED = Estimator(KernelConfig(), EstimatorConfig(kind="predicted", window="latest"))


def test_weights_and_pass_rates_follow_the_predictions():
    index = SamplingIndex(np.arange(4), PREDICTED)
    index.set_stats(np.arange(3), np.full(3, 8.0), np.array([0.0, 4.0, 8.0]), np.zeros(3))
    assert index.n_positive == 1  # before predictions: k/n, as empirical
    index.set_predictions(np.array([0.25, 0.5, np.nan, 0.9]))  # 3 unseen: ignored
    stats = index.stats_of(np.arange(4))
    assert stats["weight"].tolist() == pytest.approx([0.1875, 0.25, 0.0, 0.0])
    assert stats["pass_rate"][:3].tolist() == [0.25, 0.5, 1.0] and np.isnan(stats["pass_rate"][3])
    assert index.n_positive == 2 and index.total_weight == pytest.approx(0.4375)
    assert index.difficulty(bins=4)["histogram"]["counts"] == [0, 1, 1, 1]  # 0.25, 0.5, 1
    # a new round of a predicted problem keeps its prediction until the next one
    index.set_stats(np.array([0]), np.array([8.0]), np.array([2.0]), np.array([5]))
    assert index.stats_of(np.array([0]))["weight"][0] == pytest.approx(0.1875)
    index.add_problems(np.array([4]))
    assert np.isnan(index.pass_rates_of(np.array([4]))[0])


def log_of(rounds: list[tuple[int, int, int, int]]) -> dict[str, np.ndarray]:
    """(problem, successes of 8, step or -1, version) rows as the outcome log holds them."""
    table = np.array(rounds, dtype=np.int64).reshape(-1, 4)
    return {
        "problem_ids": table[:, 0],
        "attempts": np.full(len(table), 8, dtype=np.int64),
        "successes": table[:, 1],
        "steps": table[:, 2],
        "version": table[:, 3],
    }


request = st.lists(
    st.tuples(st.integers(0, 19), st.integers(0, 8), st.sampled_from([-1, 0, 10, 20, 30])),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(requests=st.lists(request, min_size=1, max_size=12), cut=st.integers(0, 12))
def test_the_log_folded_by_syncs_equals_a_rebuild(requests, cut):
    rows = [(p, k, s, v + 1) for v, req in enumerate(requests) for p, k, s in req]
    log = log_of(rows)
    last = len(requests)
    rebuilt = SamplingIndex(np.arange(20), PREDICTED)
    whole = Drift(DriftModel(20))
    observe(whole, rebuilt, log, last)
    followed = SamplingIndex(np.arange(20), PREDICTED)
    synced = Drift(DriftModel(20))
    for up_to in sorted({min(cut, last), last}):  # a sync at `cut`, then one at the end
        observe(synced, followed, log, up_to)
    now = max([s for _, _, s, _ in rows] + [0])
    predict(whole, rebuilt, now)
    predict(synced, followed, now)
    a, b = rebuilt.pass_rates_of(np.arange(20)), followed.pass_rates_of(np.arange(20))
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert synced.step == whole.step == max(s for _, _, s, _ in rows)


def test_a_missing_step_is_the_largest_step_given_by_then():
    index = SamplingIndex(np.arange(2), PREDICTED)
    drift = Drift(DriftModel(2))
    # version 1 gives step 10; version 2 has no step for problem 1 (the run was at 10);
    # version 3 gives step 20 and, in the same request, no step for problem 0 (20).
    log = log_of([(0, 1, 10, 1), (1, 4, -1, 2), (1, 2, 20, 3), (0, 3, -1, 3)])
    observe(drift, index, log, 3)
    assert drift.model.latest_step.tolist() == [20, 20]
    assert drift.model.prev_step.tolist() == [10, 10]
    assert drift.step == 20 and drift.version == 3
