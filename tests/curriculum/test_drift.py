"""The predicted estimator's core (service/curriculum/drift.py): O(1) updates equal to the rule
computed at once, order-independent state, and a fit that recovers a known drift."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.curriculum.drift import DriftConfig, DriftModel, direct_statistics

outcome = st.tuples(
    st.integers(0, 5),  # slot
    st.integers(1, 8),  # attempts
    st.integers(0, 8),  # successes (clipped to attempts below)
    st.integers(0, 6),  # step
)


def columns(outcomes):
    slots, n, k, steps = (np.asarray(c) for c in zip(*outcomes, strict=True))
    return slots, n.astype(float), np.minimum(k, n).astype(float), steps


def replay(outcomes, cut_points) -> DriftModel:
    model = DriftModel(6)
    slots, n, k, steps = columns(outcomes)
    bounds = [0, *sorted(set(cut_points)), len(outcomes)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b > a:
            model.observe(slots[a:b], n[a:b], k[a:b], steps[a:b])
    return model


def as_plain(edges):
    return {key: tuple(value) for key, value in edges.items()}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(outcome, min_size=1, max_size=40),
    st.lists(st.integers(0, 40), max_size=6),
    st.randoms(use_true_random=False),
)
def test_incremental_updates_equal_the_rule_computed_at_once_in_any_order(outcomes, cuts, rng):
    shuffled = list(outcomes)
    rng.shuffle(shuffled)
    model = replay(shuffled, cuts)
    slots, n, k, steps = columns(outcomes)
    direct = direct_statistics(slots, n, k, steps, DriftConfig().smoothing)
    got = as_plain(model.edges)
    assert set(got) == set(direct)
    for key, (count, w, wd) in direct.items():
        assert got[key][0] == pytest.approx(count)
        assert got[key][1] == pytest.approx(w, rel=1e-9, abs=1e-9)
        assert got[key][2] == pytest.approx(wd, rel=1e-9, abs=1e-9)
    # and the state itself (the two newest rounds) does not depend on the order
    again = replay(list(reversed(shuffled)), [])
    for name in ("latest_step", "latest_n", "latest_k", "prev_step", "prev_n", "prev_k"):
        np.testing.assert_array_equal(getattr(model, name), getattr(again, name))
    now = int(steps.max()) + 3
    np.testing.assert_allclose(
        model.predicted_pass_rates(now), again.predicted_pass_rates(now), rtol=1e-9, atol=1e-12
    )


def test_without_drift_the_prediction_is_the_latest_round():
    model = DriftModel(3)
    model.observe(np.array([0, 1, 2]), np.full(3, 8.0), np.array([0.0, 3.0, 8.0]), np.zeros(3))
    # measured once each: nothing links two steps, so nothing has moved
    np.testing.assert_allclose(model.predicted_pass_rates(10), [0.0, 3 / 8, 1.0])
    assert np.isnan(DriftModel(1).predicted_pass_rates(0)[0])


def test_the_fit_recovers_a_known_drift_and_predicts_unremeasured_problems():
    """Frontier problems drift up by 1.2 logits between steps 0 and 60; a quarter of them are
    measured again at 60. For the others the prediction beats their step-0 estimate."""
    rng = np.random.default_rng(0)
    size, k_rollouts = 4000, 16
    true_logit = rng.normal(0.0, 1.0, size)
    drift = 1.2
    model = DriftModel(size, DriftConfig(step_variance=0.01))
    n = np.full(size, float(k_rollouts))
    k0 = rng.binomial(k_rollouts, 1 / (1 + np.exp(-true_logit))).astype(float)
    model.observe(np.arange(size), n, k0, np.zeros(size, dtype=np.int64))
    again = rng.choice(size, size // 4, replace=False)
    p60 = 1 / (1 + np.exp(-(true_logit + drift)))
    k60 = rng.binomial(k_rollouts, p60[again]).astype(float)
    model.observe(again, n[again], k60, np.full(again.size, 60, dtype=np.int64))
    curves = model.trajectories(60)
    frontier = 1  # zone of the step-0 round for most of these problems
    assert curves.theta[frontier, -1] == pytest.approx(drift, abs=0.25)
    rest = np.setdiff1d(np.arange(size), again)
    rest = rest[(k0[rest] > 0) & (k0[rest] < k_rollouts)]
    predicted = model.predicted_pass_rates(60)[rest]
    stale = k0[rest] / k_rollouts
    error_predicted = np.mean(np.abs(predicted - p60[rest]))
    error_stale = np.mean(np.abs(stale - p60[rest]))
    assert error_predicted < 0.6 * error_stale


def test_an_older_round_than_both_is_ignored_and_the_grown_model_keeps_its_slots():
    model = DriftModel(1)
    for step, k in ((5, 2.0), (9, 4.0), (1, 8.0)):
        model.observe(np.array([0]), np.array([8.0]), np.array([k]), np.array([step]))
    assert (model.prev_step[0], model.latest_step[0]) == (5, 9)
    assert (model.prev_k[0], model.latest_k[0]) == (2.0, 4.0)
    model.grow(3)
    assert model.latest_step.tolist() == [9, -1, -1]
