"""PostgreSQL restarted under load: 503 + Retry-After meanwhile, self-recovery, nothing lost."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from tests.reliability.private_postgres import PrivatePostgres, unavailable_reason
from tests.reliability.servers import expected_counts, random_submission, read_counts, setup_run
from tests.reliability.traffic import Tally, post_until_accepted

WRITERS = 8
OUTAGE_S = 1.5
CLIENT_TIMEOUT_S = 10.0  # a request slower than this during an outage counts as a hang


@pytest.fixture
def private_pg():
    reason = unavailable_reason()
    if reason:
        pytest.fail(f"cannot start a private PostgreSQL: {reason}")
    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.destroy()


def test_postgres_restart_under_load_gives_503_then_recovers_without_loss(private_pg, start_server):
    server = start_server(private_pg.url)
    problem_ids = setup_run(server.url)
    acked: list = []
    tallies = [Tally() for _ in range(WRITERS)]
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer(w: int) -> None:
        rng = random.Random(w)
        try:
            with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT_S) as http:
                i = 0
                while not stop.is_set():
                    sub = random_submission(rng, f"w{w}-{i}", problem_ids)
                    response = post_until_accepted(
                        http, "r", sub, tallies[w], rng, retry_sleep_s=0.1
                    )
                    assert response.status_code == 200, response.text
                    acked.append(sub)
                    i += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    acked_after_restart = []
    for mode in ("fast", "immediate"):
        time.sleep(1.0)
        private_pg.stop(mode)
        time.sleep(OUTAGE_S)
        private_pg.start()
        mark = len(acked)
        time.sleep(1.5)
        acked_after_restart.append(len(acked) - mark)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert not failures, failures[0]

    tally = Tally()
    for t in tallies:
        tally.merge(t)
    assert tally.unexpected == {}, tally.statuses  # only 200 and 503, never 500
    assert tally.statuses[503] > 0, "the outage was never observed"
    assert tally.missing_retry_after == 0
    assert tally.client_timeouts == 0, "requests hung during the outage"
    # Recovered by itself: writes went through after each restart, with no server restart.
    assert all(n > 0 for n in acked_after_restart), acked_after_restart
    assert server.proc.poll() is None
    assert read_counts(server.url) == expected_counts(acked)
    print(
        f"\n[pg restart] writers={WRITERS} restarts=2 (fast, immediate) acknowledged={len(acked)} "
        f"statuses={dict(tally.statuses)} transport_errors={tally.transport_errors}"
    )
