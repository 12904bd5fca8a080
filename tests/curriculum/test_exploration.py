"""Exploration and information in the core: Thompson weights, the epsilon share, and the
queue's priority (service/curriculum/exploration.py, information.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.curriculum.exploration import (
    exploration_count,
    explore_slots,
    thompson_weights,
)
from service.curriculum.information import FreshRound, queue_priority, weight_moments
from service.curriculum.kernels import KernelConfig, expected_kernel

KERNEL = KernelConfig()


def test_weight_moments_match_monte_carlo():
    rng = np.random.default_rng(0)
    a, b = np.array([1.0, 5.0, 1.0, 9.0]), np.array([9.0, 5.0, 1.0, 1.0])
    mean, variance = weight_moments(a, b, KERNEL)
    np.testing.assert_allclose(mean, expected_kernel(a, b, KERNEL))
    draws = rng.beta(a, b, size=(200_000, 4))
    w = draws * (1 - draws)
    np.testing.assert_allclose(mean, w.mean(axis=0), rtol=0.01)
    np.testing.assert_allclose(variance, w.var(axis=0), rtol=0.03)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_thompson_weights_are_reproducible_for_a_seed(seed):
    n = np.array([0.0, 8.0, 8.0, 8.0])
    k = np.array([0.0, 0.0, 4.0, 8.0])
    first = thompson_weights(n, k, KERNEL, np.random.default_rng(seed))
    again = thompson_weights(n, k, KERNEL, np.random.default_rng(seed))
    np.testing.assert_array_equal(first, again)
    assert ((first >= 0) & (first <= 0.25)).all()


def test_thompson_draw_frequencies_follow_the_posterior():
    """The first pick of a Thompson batch is problem i with probability E[w_i / sum w] over
    the posterior draws: estimated once from the weights' law, once from picks."""
    n = np.array([8.0, 8.0, 8.0, 0.0])
    k = np.array([0.0, 4.0, 8.0, 0.0])
    picks = np.zeros(4)
    expected = np.zeros(4)
    trials = 20_000
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        w = thompson_weights(n, k, KERNEL, rng)
        expected += w / w.sum()
        picks[rng.choice(4, p=w / w.sum())] += 1
    np.testing.assert_allclose(picks / trials, expected / trials, atol=0.012)
    # the 0-of-8 and 8-of-8 problems are drawn sometimes (they would never be under k/n)
    assert picks[0] > 0.03 * trials and picks[2] > 0.03 * trials


def test_the_exploration_share_is_uniform_over_the_left_out_and_skips_the_drawn():
    left_out = np.array([True, False, True, True, False, True])
    assert exploration_count(32, 0.1, 4) == 3
    assert exploration_count(32, 0.5, 4) == 4
    with pytest.raises(ValueError):
        exploration_count(8, 1.5, 4)
    counts = np.zeros(6)
    for seed in range(6000):
        slots = explore_slots(left_out, 2, np.random.default_rng(seed), exclude=np.array([5]))
        assert len(set(slots.tolist())) == 2 and 5 not in slots
        counts[slots] += 1
    assert counts[1] == counts[4] == counts[5] == 0
    np.testing.assert_allclose(counts[[0, 2, 3]] / 6000, 2 / 3, atol=0.03)


def test_an_aged_round_ranks_above_the_same_round_made_fresh():
    """The weight is steep near p = 0 and p = 1 and flat at 0.5, so a 0-of-8 round leaves more
    to learn about w than a 4-of-8 one; and an aged round ranks above the same round made
    fresh (not monotonically in the age: near p = 0 the spread peaks at middling evidence), so
    an old 0-of-8 round (a hard problem the student may have learnt since) outranks the same
    round made recently and a fresh frontier one."""
    n = np.repeat(8.0, 5)
    k = np.array([0.0, 0.0, 4.0, 8.0, 8.0])
    age = np.array([250.0, 0.0, 0.0, 0.0, 100.0])
    priority = queue_priority(n, k, age, FreshRound(KERNEL))
    assert priority[0] > priority[1] > priority[2]
    assert priority[4] > priority[3]
    ages = np.linspace(25, 500, 20)
    for kk in (0.0, 2.0, 4.0, 8.0):
        series = queue_priority(np.repeat(8.0, 20), np.repeat(kk, 20), ages, FreshRound(KERNEL))
        fresh = queue_priority(np.array([8.0]), np.array([kk]), np.array([0.0]), FreshRound(KERNEL))
        assert (series > fresh).all()


def test_a_predicted_change_of_weight_raises_the_priority():
    n, k, age = np.array([8.0]), np.array([0.0]), np.array([10.0])
    base = queue_priority(n, k, age, FreshRound(KERNEL))
    moved = queue_priority(n, k, age, FreshRound(KERNEL), predicted=np.array([0.4]))
    assert moved[0] == pytest.approx(base[0] + 0.24)
    unknown = queue_priority(n, k, age, FreshRound(KERNEL), predicted=np.array([np.nan]))
    assert unknown[0] == pytest.approx(base[0])
