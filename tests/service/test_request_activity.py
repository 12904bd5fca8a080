"""RequestActivity: the quiet that background warm-up work waits for."""

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


def waiter(activity: RequestActivity, stop: threading.Event) -> tuple[threading.Thread, list]:
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(activity.wait_idle(0.02, stop)))
    thread.start()
    return thread, answer


def test_wait_idle_returns_once_requests_stop():
    activity = RequestActivity()
    activity.started()
    thread, answer = waiter(activity, threading.Event())
    thread.join(0.2)
    assert thread.is_alive()  # still in flight: keeps waiting
    activity.finished()
    thread.join(2.0)
    assert answer == [True]
    assert time.monotonic() - activity.last_done >= 0.02


def test_wait_idle_gives_up_when_told_to_stop():
    activity = RequestActivity()
    activity.started()
    stop = threading.Event()
    thread, answer = waiter(activity, stop)
    stop.set()  # the app shuts down while a request is still in flight
    thread.join(2.0)
    assert answer == [False]
