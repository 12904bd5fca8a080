"""kill -9 the server while writers stream outcomes: every acknowledged outcome survives once."""

from __future__ import annotations

import random
import threading
import time

import httpx

from tests.reliability.servers import expected_counts, random_submission, read_counts, setup_run

KILLS = 3
WRITERS = 6


def stream_until_killed(url: str, w: int, rnd: int, problem_ids, acked: list, pending: list):
    """Post fresh submissions until the connection fails; the one in flight then is pending."""
    rng = random.Random(f"{rnd}-{w}")
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(100_000):
            sub = random_submission(rng, f"r{rnd}-w{w}-{i}", problem_ids)
            try:
                response = http.post(
                    "/v1/runs/r/outcomes", json=sub.body(), headers={"Idempotency-Key": sub.key}
                )
            except httpx.TransportError:
                pending.append(sub)
                return
            if response.status_code != 200:
                # A 503 would mean nothing was committed, but the test expects none here.
                pending.append(sub)
                raise AssertionError(f"{response.status_code}: {response.text}")
            acked.append(sub)


def test_kill_9_mid_stream_loses_no_acknowledged_outcome(backend_url, start_server):
    server = start_server(backend_url)
    problem_ids = setup_run(server.url)
    acked: list = []  # every submission that got a 200, across all rounds
    rng = random.Random(7)
    lost = 0  # acknowledged attempts missing after a restart
    pending_committed = 0
    for rnd in range(KILLS):
        pending: list = []
        round_acked: list = []
        threads = [
            threading.Thread(
                target=stream_until_killed,
                args=(server.url, w, rnd, problem_ids, round_acked, pending),
            )
            for w in range(WRITERS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.3, 1.0))
        server.kill9()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert round_acked, "no traffic reached the server before the kill"
        assert len(pending) == WRITERS, "every writer should end with its in-flight post"
        acked += round_acked

        server.start()
        after_restart = read_counts(server.url)
        # Re-post what was in flight. A replay means the killed server had committed it.
        committed_before_kill = []
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for sub in pending:
                response = http.post(
                    "/v1/runs/r/outcomes", json=sub.body(), headers={"Idempotency-Key": sub.key}
                )
                assert response.status_code == 200, response.text
                if response.headers.get("idempotent-replayed") == "true":
                    committed_before_kill.append(sub)
        pending_committed += len(committed_before_kill)
        # Exactly the acknowledged posts plus the in-flight ones that did commit: nothing
        # acknowledged missing, nothing counted twice.
        expected = expected_counts(acked + committed_before_kill)
        lost += sum(
            max(0, n - after_restart.get(pid, (0, 0))[0]) for pid, (n, _) in expected.items()
        )
        assert after_restart == expected
        acked += pending
        assert read_counts(server.url) == expected_counts(acked)
    print(
        f"\n[crash {backend_url.split(':')[0]}] kills={KILLS} acknowledged={len(acked)} "
        f"in_flight_at_kill={KILLS * WRITERS} of_which_committed={pending_committed} "
        f"attempts_lost={lost}"
    )
