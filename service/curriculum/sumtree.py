"""A float64 sum tree with vectorised batch updates and vectorised weighted descent.

Layout: one array of 2 * capacity (capacity a power of two); node i has children 2i and 2i+1,
the root is node 1 and leaf s lives at capacity + s. Every internal node is always recomputed
as the exact sum of its two children (never updated by adding deltas), so there is no
floating-point drift and the tree is a pure function of its leaves.
"""

from __future__ import annotations

import numpy as np

TOP_LEVELS = 12  # levels resolved by one searchsorted in descend(); 2**12 cached prefix sums


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


class SumTree:
    def __init__(self, capacity: int) -> None:
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self.capacity = _next_pow2(max(1, capacity))
        self.depth = self.capacity.bit_length() - 1
        self.tree = np.zeros(2 * self.capacity, dtype=np.float64)
        self._top_prefix: np.ndarray | None = None  # cache for descend(); reset on writes

    @classmethod
    def from_leaves(cls, values: np.ndarray, capacity: int | None = None) -> SumTree:
        """Build in O(capacity) with one numpy op per level."""
        values = np.asarray(values, dtype=np.float64)
        tree = cls(max(len(values), capacity or 0))
        tree.tree[tree.capacity : tree.capacity + len(values)] = values
        tree._rebuild()
        return tree

    def _rebuild(self) -> None:
        lo = self.capacity
        while lo > 1:
            children = self.tree[lo : 2 * lo]
            self.tree[lo // 2 : lo] = children[0::2] + children[1::2]
            lo //= 2
        self._top_prefix = None

    @property
    def leaves(self) -> np.ndarray:
        """A writable view of the leaves; write through update() to keep parents right."""
        return self.tree[self.capacity :]

    @property
    def nbytes(self) -> int:
        return self.tree.nbytes

    def total(self) -> float:
        # With capacity 1 the root is the single leaf, so this holds for every size.
        return float(self.tree[1])

    def grow(self, min_capacity: int) -> None:
        """Double the capacity until it holds min_capacity leaves (O(new capacity), rare)."""
        if min_capacity <= self.capacity:
            return
        old = self.leaves.copy()
        self._allocate(min_capacity)
        self.tree[self.capacity : self.capacity + len(old)] = old
        self._rebuild()

    def update(self, slots: np.ndarray, values: np.ndarray | float) -> None:
        """Set leaves[slots] = values; O(k log N) with one numpy op group per level.

        Duplicate slots: the last value wins.
        """
        slots = np.asarray(slots, dtype=np.int64)
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), slots.shape)
        if slots.size == 0:
            return
        if slots.size > 1:
            # Sort (stable) so duplicates are adjacent; keep each slot's last occurrence.
            order = np.argsort(slots, kind="stable")
            slots, values = slots[order], values[order]
            last = np.append(slots[1:] != slots[:-1], True)
            slots, values = slots[last], values[last]
        self._top_prefix = None
        nodes = slots + self.capacity
        self.tree[nodes] = values
        while nodes[0] > 1:
            nodes = nodes >> 1
            if nodes.size > 1:
                # nodes stay sorted, so duplicate parents are adjacent.
                nodes = nodes[np.append(True, nodes[1:] != nodes[:-1])]
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]

    def descend(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each target u in [0, total), the leaf whose cumulative range holds u.

        Returns (slots, remainders): remainder is u minus the mass left of the leaf, in
        [0, leaf value]. O(B log N) numpy work with a handful of numpy calls per level.
        The top TOP_LEVELS levels are resolved at once by a searchsorted over the prefix sums
        of that level (at most 2**TOP_LEVELS nodes, cached until the next write): one call
        instead of ~5 per level.
        Targets beyond the total are clamped to the last positive leaf.
        """
        return self._descend(np.array(targets, dtype=np.float64))  # a copy: _descend writes

    def _descend(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """descend() on a float64 array it may overwrite."""
        targets = u.copy()  # for the rare careful re-descent below
        top = min(TOP_LEVELS, self.depth)
        if self._top_prefix is None:
            self._top_prefix = np.concatenate(([0.0], np.cumsum(self.tree[1 << top : 2 << top])))
        prefix = self._top_prefix
        # Last node whose prefix <= u: equal prefixes (zero-weight nodes) resolve to the
        # positive node after them.
        node = np.searchsorted(prefix, u, side="right") - 1
        np.clip(node, 0, (1 << top) - 1, out=node)
        u -= prefix[node]
        node += 1 << top
        for _ in range(self.depth - top):
            node <<= 1
            left = self.tree[node]
            go_right = u >= left
            u -= left * go_right
            node += go_right
        bad = self.tree[node] <= 0
        if np.any(bad) and self.tree[1] > 0:
            # Rounding pushed a target into a zero-weight right sibling (or past the total):
            # walk those few down again preferring the positive child.
            # (From the original targets: the remainders are relative to the leaf reached.)
            node[bad], u[bad] = self._descend_careful(targets[bad])
        return node - self.capacity, np.maximum(u, 0.0)

    def _descend_careful(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-level descent from the root that never enters a zero-weight child (rare path)."""
        u = np.minimum(u, np.nextafter(self.tree[1], 0.0))
        node = np.ones(u.shape, dtype=np.int64)
        for _ in range(self.depth):
            left, right = self.tree[2 * node], self.tree[2 * node + 1]
            go_right = ((u >= left) & (right > 0)) | (left <= 0)
            u = np.where(go_right, u - left, u)
            node = 2 * node + go_right
        return node, u

    def draw(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """size i.i.d. slots with probability leaf / total (with replacement)."""
        return self.descend(rng.random(size) * self.total())[0]

    def draw_first_appearances(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """The distinct slots of `size` i.i.d. draws, in order of first appearance: exactly
        de-duplicating draw(size, rng) (same rng stream, same result), about a third cheaper.

        The targets are descended in sorted order (memory access in address order, and the
        leaves come out sorted, so repeats are adjacent and need no np.unique); positions
        are then mapped back to draw order.
        """
        if size <= 0:
            return np.empty(0, dtype=np.int64)
        u = rng.random(size) * self.total()
        order = np.argsort(u, kind="stable")
        slots = self._descend(u[order])[0]
        if np.any(slots[1:] < slots[:-1]):
            # Only the rare rounding fix-up in descend() can break monotonicity.
            sequence = np.empty_like(slots)
            sequence[order] = slots
            _, first = np.unique(sequence, return_index=True)
            return sequence[np.sort(first)]
        starts = np.flatnonzero(np.append(True, slots[1:] != slots[:-1]))
        first_position = np.minimum.reduceat(order, starts)
        return slots[starts][np.argsort(first_position)]

    def positive_leaves(self) -> np.ndarray:
        """Sorted slots with a positive leaf, found top-down: O(k log N) for k such leaves."""
        nodes = np.ones(1 if self.tree[1] > 0 else 0, dtype=np.int64)
        for _ in range(self.depth):
            nodes = np.stack([2 * nodes, 2 * nodes + 1], axis=1).ravel()
            nodes = nodes[self.tree[nodes] > 0]
        return nodes - self.capacity
