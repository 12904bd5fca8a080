"""RequestActivity: the quiet test background warm-up work waits for."""

from __future__ import annotations

import threading
import time

from service.domain.activity import RequestActivity


def test_idle_only_after_the_gap_with_nothing_in_flight():
    activity = RequestActivity()
    assert activity.idle_for(10.0)  # nothing ever served
    activity.started()
    assert not activity.idle_for(0.0)
    activity.finished()
    assert activity.idle_for(0.0)
    assert not activity.idle_for(10.0)  # finished just now


def test_wait_idle_returns_once_requests_stop():
    activity = RequestActivity()
    activity.started()
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (activity.wait_idle(0.02), done.set()))
    waiter.start()
    assert not done.wait(0.2)  # still in flight: keeps waiting
    activity.finished()
    assert done.wait(2.0)
    waiter.join()
    assert time.monotonic() - activity.last_done >= 0.02
