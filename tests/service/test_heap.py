"""The start-up heap freeze (service/heap.py) used by `paced serve` and the bundled trainer."""

from __future__ import annotations

import gc
import weakref

from service.heap import startup_heap_frozen


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_frozen_for_the_block_only_so_nothing_alive_then_leaks_for_good():
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector can free it
    gone = weakref.ref(a)
    with startup_heap_frozen():
        assert gc.get_freeze_count() > 0
        del a, b
        gc.collect()
        assert gone() is not None  # frozen: the collector does not see it
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None  # collectable again once the block is over
