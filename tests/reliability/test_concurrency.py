"""32 writers x 100 outcome posts with replayed keys and client timeouts: counted exactly once."""

from __future__ import annotations

import random
import threading
import time

import httpx

from tests.reliability.servers import expected_counts, random_submission, read_counts, setup_run
from tests.reliability.traffic import Tally, post_until_accepted

WRITERS = 32
REQUESTS_PER_WRITER = 100
REPLAY_P = 0.25  # share of requests that re-send an earlier submission with its key
SHORT_TIMEOUT_P = 0.1  # share of first tries that time out client-side, then retry


def test_concurrent_writers_with_replays_and_timeouts_count_each_submission_once(
    backend_url, start_server
):
    server = start_server(backend_url)
    problem_ids = setup_run(server.url)
    # Every submission ever created, by key; replays pick from it across writers, so a key
    # can be in flight in two threads at once.
    created = {}
    created_lock = threading.Lock()
    tallies = [Tally() for _ in range(WRITERS)]
    replays_sent = [0] * WRITERS
    failures: list[BaseException] = []

    def writer(w: int) -> None:
        rng = random.Random(1000 + w)
        try:
            with httpx.Client(base_url=server.url) as http:
                for i in range(REQUESTS_PER_WRITER):
                    with created_lock:
                        pool = list(created.values()) if rng.random() < REPLAY_P else None
                    if pool:
                        sub = rng.choice(pool)
                        replays_sent[w] += 1
                    else:
                        sub = random_submission(rng, f"w{w}-{i}", problem_ids)
                        with created_lock:
                            created[sub.key] = sub
                    response = post_until_accepted(
                        http, "r", sub, tallies[w], rng, short_timeout_p=SHORT_TIMEOUT_P
                    )
                    assert response.status_code == 200, response.text
        except BaseException as exc:  # surfaced in the main thread
            failures.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert not failures, failures[0]

    tally = Tally()
    for t in tallies:
        tally.merge(t)
    assert tally.unexpected == {}, tally.statuses
    assert tally.missing_retry_after == 0
    assert read_counts(server.url) == expected_counts(created.values())
    # Each key was applied at most once as a fresh (non-replayed) 200.
    assert tally.statuses[200] - tally.server_replays <= len(created)
    # Replays really happened: deliberate ones plus retries after client timeouts.
    assert sum(replays_sent) > 0 and tally.server_replays >= sum(replays_sent)
    print(
        f"\n[concurrency {backend_url.split(':')[0]}] writers={WRITERS} "
        f"requests={WRITERS * REQUESTS_PER_WRITER} unique={len(created)} "
        f"replays_sent={sum(replays_sent)} server_replays={tally.server_replays} "
        f"client_timeouts={tally.client_timeouts} statuses={dict(tally.statuses)} "
        f"elapsed={elapsed:.1f}s"
    )
