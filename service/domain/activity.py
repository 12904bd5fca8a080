"""Whether the process is serving requests: background warm-up work runs only when it is not.

The prompt cache's prefill is a sequential scan that holds the GIL while it turns rows into
Python objects. Run alongside requests it doubled a back-to-back client's batch latency
(bench/http.py one-client p50 7.6 -> 14.2 ms at 1e6/512). A trainer leaves long gaps between
its requests (a training step), so warming up only in those gaps costs requests nothing;
under continuous load the warm-up waits and draws read what they miss on demand, as they
would without it.
"""

from __future__ import annotations

import threading
import time


class RequestActivity:
    """Requests in flight and when the last one finished (monotonic seconds). The counters
    are written on the event loop and read from background threads: single int/float
    stores, atomic under the GIL, so no lock on the request path."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.last_done = float("-inf")

    def started(self) -> None:
        self.in_flight += 1

    def finished(self) -> None:
        self.in_flight -= 1
        self.last_done = time.monotonic()

    def idle_for(self, gap_s: float) -> bool:
        return self.in_flight == 0 and time.monotonic() - self.last_done >= gap_s

    def wait_idle(self, gap_s: float, stop: threading.Event) -> bool:
        """Block (a background thread) until no request has been in flight for ``gap_s``;
        False when ``stop`` is set first (the app is shutting down)."""
        while not self.idle_for(gap_s):
            if stop.wait(gap_s / 2):
                return False
        return not stop.is_set()
