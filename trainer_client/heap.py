"""Keep a training process's start-up heap out of the garbage collector's sight.

A full collection walks every tracked object, and a trainer's heap is mostly what it imported
and built at start: torch alone brings ~165k objects, and on a 2-core machine each full
collection of such a heap took ~120 ms, landing inside whichever step or request happened to
allocate enough to trigger it. Freezing the survivors of start-up (gc.freeze, CPython's own
advice for long-running processes) makes those collections cost ~2 ms; everything allocated
later is still collected as usual. (The server does the same for itself in service/heap.py.)
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def startup_heap_frozen() -> Iterator[None]:
    """Collect what start-up left behind and freeze the rest for the block only: what was
    frozen is collectable again after it (a process that trains twice must not keep the
    first run's models for good)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
