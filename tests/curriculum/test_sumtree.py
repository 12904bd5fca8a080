"""Sum tree: totals and internal sums after updates, growth, enumeration and draws."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from service.curriculum.sumtree import SumTree

leaf_values = st.floats(min_value=0.0, max_value=1e3, allow_nan=False)


def assert_consistent(tree: SumTree, expected_leaves: np.ndarray) -> None:
    n = len(expected_leaves)
    np.testing.assert_array_equal(tree.leaves[:n], expected_leaves)
    assert not tree.leaves[n:].any()
    internal = np.arange(1, tree.capacity)
    # Every internal node is exactly the sum of its children (no drift).
    np.testing.assert_array_equal(
        tree.tree[internal], tree.tree[2 * internal] + tree.tree[2 * internal + 1]
    )
    assert tree.total() == pytest.approx(expected_leaves.sum(), rel=1e-12, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    initial=st.lists(leaf_values, min_size=1, max_size=70),
    updates=st.lists(
        st.lists(st.tuples(st.integers(0, 69), leaf_values), min_size=1, max_size=20),
        max_size=6,
    ),
)
def test_totals_match_numpy_after_random_batch_updates(initial, updates):
    values = np.array(initial)
    tree = SumTree.from_leaves(values)
    for batch in updates:
        slots = np.array([s % len(values) for s, _ in batch])
        new = np.array([v for _, v in batch])
        tree.update(slots, new)
        for s, v in zip(slots, new, strict=True):  # duplicates in a batch: last one wins
            values[s] = v
        assert_consistent(tree, values)


def test_large_batch_update_matches_numpy_sum():
    rng = np.random.default_rng(1)
    values = rng.random(100_000)
    tree = SumTree.from_leaves(values)
    slots = rng.integers(0, len(values), 5_000)
    new = rng.random(5_000) * (rng.random(5_000) < 0.5)
    tree.update(slots, new)
    order = np.argsort(slots, kind="stable")
    last = np.append(slots[order][1:] != slots[order][:-1], True)
    values[slots[order][last]] = new[order][last]
    assert_consistent(tree, values)


def test_growth_doubles_capacity_and_keeps_leaves():
    tree = SumTree.from_leaves(np.array([1.0, 2.0, 3.0]))
    assert tree.capacity == 4
    tree.grow(9)
    assert tree.capacity == 16
    tree.update(np.array([8]), np.array([5.0]))
    assert_consistent(tree, np.array([1, 2, 3, 0, 0, 0, 0, 0, 5.0]))


def test_positive_leaves_enumerates_exactly_the_nonzero_slots():
    values = np.zeros(1000)
    values[[0, 17, 511, 512, 999]] = [1.0, 1e-300, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(
        SumTree.from_leaves(values).positive_leaves(), [0, 17, 511, 512, 999]
    )
    assert SumTree.from_leaves(np.zeros(5)).positive_leaves().size == 0


@pytest.mark.parametrize("n", [1, 3, 50, 5000])
def test_draw_frequencies_follow_the_leaves(n):
    rng = np.random.default_rng(n)
    values = rng.random(n) * (rng.random(n) < 0.6)
    values[0] = max(values[0], 0.1)  # at least one positive leaf
    tree = SumTree.from_leaves(values)
    draws = tree.draw(60_000, rng)
    assert np.all(values[draws] > 0), "a zero-weight leaf was drawn"
    observed = np.bincount(draws, minlength=n)
    positive = values > 0
    if positive.sum() > 1 and n <= 50:
        expected = values[positive] / values.sum() * len(draws)
        assert stats.chisquare(observed[positive], expected).pvalue > 1e-3


def test_descend_returns_the_leaf_holding_each_target_and_its_remainder():
    tree = SumTree.from_leaves(np.array([1.0, 0.0, 2.0, 0.0, 0.0, 3.0]))
    slots, rem = tree.descend(np.array([0.0, 0.5, 1.0, 2.9, 3.0, 5.99]))
    np.testing.assert_array_equal(slots, [0, 0, 2, 2, 5, 5])
    np.testing.assert_allclose(rem, [0.0, 0.5, 0.0, 1.9, 0.0, 2.99])


@settings(max_examples=60, deadline=None)
@given(
    leaves=st.lists(
        st.one_of(st.just(0.0), st.floats(1e-6, 10.0)), min_size=1, max_size=300
    ).filter(lambda v: sum(v) > 0),
    size=st.integers(1, 600),
    seed=st.integers(0, 2**32 - 1),
)
def test_draw_first_appearances_equals_deduplicating_draw(leaves, size, seed):
    tree = SumTree.from_leaves(np.array(leaves))
    sequence = tree.draw(size, np.random.default_rng(seed))
    _, first = np.unique(sequence, return_index=True)
    expected = sequence[np.sort(first)]
    got = tree.draw_first_appearances(size, np.random.default_rng(seed))
    assert got.tolist() == expected.tolist()
    assert np.all(np.array(leaves)[got] > 0)
