"""Estimator weights, pass rates, uncertainty, zones and half-life merging."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from service.curriculum import Estimator, EstimatorConfig, KernelConfig, merge_outcome, zones

counts = st.integers(min_value=0, max_value=64)
# Exponents are > 0 (KernelConfig, the API and the client share that rule).
exponents = st.floats(min_value=0.0, max_value=4.0, exclude_min=True)


def empirical(alpha=1.0, beta=1.0) -> Estimator:
    return Estimator(KernelConfig(alpha, beta), EstimatorConfig())


def posterior(alpha=1.0, beta=1.0, a0=1.0, b0=1.0) -> Estimator:
    return Estimator(KernelConfig(alpha, beta), EstimatorConfig("posterior", a0, b0))


@given(n=st.integers(1, 64), data=st.data(), alpha=exponents, beta=exponents)
def test_empirical_weight_is_the_kernel_of_the_pass_rate(n, data, alpha, beta):
    k = data.draw(st.integers(0, n))
    w = empirical(alpha, beta).weights(np.array([float(n)]), np.array([float(k)]))
    p = k / n
    assert w.dtype == np.float64
    assert w[0] == pytest.approx(p**alpha * (1 - p) ** beta, rel=1e-12, abs=1e-300)


def test_default_kernel_is_zero_at_both_ends_and_for_unseen():
    est = empirical()
    w = est.weights(np.array([8.0, 8.0, 0.0, 8.0]), np.array([0.0, 8.0, 0.0, 4.0]))
    np.testing.assert_array_equal(w, [0.0, 0.0, 0.0, 0.25])


def test_decayed_counts_are_accepted_and_clipped_to_a_valid_rate():
    est = empirical()
    # successes a rounding hair above attempts must read as p = 1, not a negative weight.
    w = est.weights(np.array([2.5, 2.5]), np.array([1.25, 2.5 + 1e-15]))
    assert w[0] == pytest.approx(0.25)
    assert w[1] == 0.0


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 40),
    data=st.data(),
    alpha=st.floats(0.0, 3.0, exclude_min=True),
    beta=st.floats(0.0, 3.0, exclude_min=True),
    a0=st.floats(0.2, 5.0),
    b0=st.floats(0.2, 5.0),
)
def test_posterior_weight_matches_numerical_integration(n, data, alpha, beta, a0, b0):
    k = data.draw(st.integers(0, n))
    w = posterior(alpha, beta, a0, b0).weights(np.array([float(n)]), np.array([float(k)]))[0]
    # Integrand p^(x-1) (1-p)^(y-1) / B(a, b), x = a + alpha, y = b + beta. quad's "alg" weight
    # takes each end-point singularity; the smooth rest is integrated numerically per half.
    x, y = a0 + k + alpha, b0 + n - k + beta
    left, _ = integrate.quad(
        lambda p: (1 - p) ** (y - 1), 0, 0.5, weight="alg", wvar=(x - 1, 0), epsabs=1e-14
    )
    right, _ = integrate.quad(
        lambda p: p ** (x - 1), 0.5, 1, weight="alg", wvar=(0, y - 1), epsabs=1e-14
    )
    integral = left + right
    a, b = a0 + k, b0 + n - k
    expected = integral / special.beta(a, b)
    assert w == pytest.approx(expected, abs=1e-9)


def test_posterior_gives_unseen_problems_the_prior_expected_weight():
    est = posterior()  # Beta(1,1): E[p(1-p)] = 1/6
    assert est.weights(np.zeros(3), np.zeros(3)) == pytest.approx([1 / 6] * 3)
    assert est.unseen_weight() == pytest.approx(1 / 6)
    assert empirical().unseen_weight() == 0.0


@pytest.mark.parametrize("est", [empirical(), posterior()])
def test_pass_rates_are_nan_for_unseen(est):
    rates = est.pass_rates(np.array([0.0, 4.0]), np.array([0.0, 1.0]))
    assert np.isnan(rates[0]) and rates[1] == 0.25


@given(n=counts, data=st.data())
def test_uncertainty_is_the_beta_posterior_variance(n, data):
    k = data.draw(st.integers(0, n))
    for est in (empirical(), posterior(a0=2.0, b0=3.0)):
        a0, b0 = est.config.prior_alpha, est.config.prior_beta
        var = est.uncertainty(np.array([float(n)]), np.array([float(k)]))[0]
        assert var == pytest.approx(stats.beta(a0 + k, b0 + n - k).var(), rel=1e-9)


def test_eligible_uniform_depends_on_kind():
    attempts = np.array([0.0, 3.0])
    np.testing.assert_array_equal(empirical().eligible_uniform(attempts), [False, True])
    np.testing.assert_array_equal(posterior().eligible_uniform(attempts), [True, True])


def test_zones():
    z = zones(np.array([0.0, 4.0, 4.0, 4.0, 2.5]), np.array([0.0, 0.0, 2.0, 4.0, 2.5]))
    np.testing.assert_array_equal(z, [0, 1, 2, 3, 3])
    assert z.dtype == np.int8


def test_invalid_configs_are_rejected():
    with pytest.raises(ValueError):
        KernelConfig(alpha=-1.0)
    # The same rule as the API's Kernel schema and the client's model: finite and > 0.
    for alpha, beta in ((0.0, 1.0), (1.0, 0.0), (float("inf"), 1.0), (1.0, float("nan"))):
        with pytest.raises(ValueError):
            KernelConfig(alpha, beta)
    with pytest.raises(ValueError):
        EstimatorConfig(kind="bogus")
    with pytest.raises(ValueError):
        EstimatorConfig(half_life_steps=0.0)


outcome = st.tuples(st.integers(1, 16), st.integers(0, 16), st.integers(0, 200))


def fold(outcomes, half_life):
    state = (0.0, 0.0, -1)
    for n, k, step in outcomes:
        state = merge_outcome(*state, n, min(k, n), step, half_life)
    return state


@settings(max_examples=60, deadline=None)
@given(
    outcomes=st.lists(outcome, min_size=1, max_size=8),
    half_life=st.one_of(st.none(), st.floats(0.5, 100.0)),
    data=st.data(),
)
def test_merge_outcome_is_order_independent(outcomes, half_life, data):
    shuffled = data.draw(st.permutations(outcomes))
    a, b = fold(outcomes, half_life), fold(shuffled, half_life)
    assert a[0] == pytest.approx(b[0], rel=1e-9)
    assert a[1] == pytest.approx(b[1], rel=1e-9, abs=1e-12)
    assert a[2] == b[2] == max(step for _, _, step in outcomes)
    # And it equals the definition: sum_i n_i 2^(-(T - t_i)/h).
    newest = a[2]
    decay = [1.0 if half_life is None else 2 ** (-(newest - t) / half_life) for *_, t in outcomes]
    assert a[0] == pytest.approx(
        sum(n * d for (n, _, _), d in zip(outcomes, decay, strict=True)), rel=1e-9
    )


@given(outcomes=st.lists(outcome, min_size=1, max_size=8))
def test_merge_without_half_life_is_a_plain_sum(outcomes):
    n, k, step = fold(outcomes, None)
    assert n == sum(o[0] for o in outcomes)
    assert k == sum(min(o[1], o[0]) for o in outcomes)
    assert isinstance(step, int)


def test_merge_outcome_vectorised_matches_scalar():
    old_n, old_k, old_t = np.array([4.0, 0.0, 8.0]), np.array([2.0, 0.0, 8.0]), np.array([5, -1, 9])
    n, k, t = merge_outcome(
        old_n, old_k, old_t, np.array([2, 3, 1]), np.array([1, 0, 1]), np.array([7, 3, 4]), 2.0
    )
    for i in range(3):
        expect = merge_outcome(
            old_n[i], old_k[i], old_t[i], [2, 3, 1][i], [1, 0, 1][i], [7, 3, 4][i], 2.0
        )
        assert (n[i], k[i], t[i]) == pytest.approx(expect)
    # Newer step: old counts halve per half-life; older step: the new counts are discounted.
    assert n[0] == pytest.approx(4 * 0.5 + 2)
    assert n[2] == pytest.approx(8 + 1 * 2 ** (-5 / 2))


def fold_latest(outcomes):
    state = (0.0, 0.0, -1)
    for n, k, step in outcomes:
        state = merge_outcome(*state, n, min(k, n), step, None, "latest")
    return state


@settings(max_examples=60, deadline=None)
@given(outcomes=st.lists(outcome, min_size=1, max_size=8), data=st.data())
def test_latest_window_keeps_exactly_the_newest_round_in_any_order(outcomes, data):
    shuffled = data.draw(st.permutations(outcomes))
    newest = max(step for *_, step in outcomes)
    in_round = [(n, min(k, n)) for n, k, step in outcomes if step == newest]
    for order in (outcomes, shuffled):
        n, k, step = fold_latest(order)
        assert step == newest
        assert n == sum(a for a, _ in in_round)
        assert k == sum(s for _, s in in_round)


def test_latest_window_after_a_fresh_estimate_equals_that_estimate():
    # Mastered long ago (16/16 over two rounds), then a fresh round at K=8 finds 2/8.
    state = fold_latest([(8, 8, 0), (8, 8, 5)])
    n, k, _ = merge_outcome(*state, 8, 2, 40, None, "latest")
    assert k / n == 2 / 8
    # The "all" window still averages the old student in: 18/24.
    n_all, k_all, _ = merge_outcome(16.0, 16.0, 5, 8, 2, 40, None)
    assert k_all / n_all == 18 / 24


def test_latest_window_refuses_a_half_life():
    with pytest.raises(ValueError):
        EstimatorConfig(window="latest", half_life_steps=5.0)
    with pytest.raises(ValueError):
        EstimatorConfig(window="recent")
