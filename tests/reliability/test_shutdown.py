"""SIGTERM lets in-flight requests finish: slow uploads still get 2xx and their data stays."""

from __future__ import annotations

import json
import random
import signal
import threading
import time

import httpx

from tests.reliability.servers import Submission, expected_counts, read_counts, setup_run

IN_FLIGHT = 4
ITEMS = 2000  # a large outcome post per request


def test_sigterm_drains_in_flight_posts(backend_url, start_server):
    server = start_server(backend_url)
    problem_ids = setup_run(server.url, problems=200)
    rng = random.Random(3)
    subs = [
        Submission(
            f"big{i}",
            tuple((problem_ids[j % len(problem_ids)], 4, rng.randint(0, 4)) for j in range(ITEMS)),
        )
        for i in range(IN_FLIGHT)
    ]
    headers_sent = threading.Barrier(IN_FLIGHT + 1)
    release = threading.Event()
    responses: dict[int, httpx.Response | BaseException] = {}

    def slow_post(i: int) -> None:
        payload = json.dumps(subs[i].body()).encode()

        def body():
            # Headers and a first chunk reach the server, then the upload stalls until the
            # server has been told to stop: the request is unambiguously in flight.
            yield payload[:100]
            headers_sent.wait(timeout=30)
            release.wait(timeout=30)
            yield payload[100:]

        try:
            responses[i] = httpx.post(
                f"{server.url}/v1/runs/r/outcomes",
                content=body(),
                headers={"Idempotency-Key": subs[i].key, "content-type": "application/json"},
                timeout=60,
            )
        except BaseException as exc:
            responses[i] = exc

    threads = [threading.Thread(target=slow_post, args=(i,)) for i in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    headers_sent.wait(timeout=30)
    time.sleep(0.5)  # let the server parse the request heads
    server.sigterm()
    time.sleep(0.5)
    # Shutting down: new connections are refused while the old ones drain.
    refused = False
    try:
        httpx.get(f"{server.url}/healthz", timeout=2)
    except httpx.TransportError:
        refused = True
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    # uvicorn drains, then re-raises the captured SIGTERM: exit status -15, not a crash.
    assert server.proc.wait(timeout=60) in (0, -signal.SIGTERM), server.log()

    for i in range(IN_FLIGHT):
        response = responses[i]
        assert isinstance(response, httpx.Response), repr(response)
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": len(subs[i].outcomes)}
    assert refused, "the stopping server still accepted a new connection"

    server.start()
    assert read_counts(server.url) == expected_counts(subs)
