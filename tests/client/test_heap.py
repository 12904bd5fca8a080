"""The start-up heap freeze the bundled trainer uses (trainer_client/heap.py)."""

from __future__ import annotations

import gc
import weakref

from trainer_client.heap import startup_heap_frozen


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


def test_the_server_freezes_its_heap_for_good():
    from service.heap import freeze_startup_heap

    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
