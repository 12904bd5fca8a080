"""Several consumers at once against a real server: claims never overlap, and every rank
asking with one draw key gets one batch while outcomes keep arriving."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

from tests.reliability.servers import setup_run

THREADS = 8


def run_together(work: Callable[[int], object]) -> list[object]:
    """Call work(i) in THREADS threads released at the same moment; their results in order."""
    barrier = threading.Barrier(THREADS)
    results: list[object] = [None] * THREADS
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_claimers_never_share_a_problem(backend_url, start_server):
    server = start_server(backend_url)
    setup_run(server.url, problems=40)

    def claim_queue(i: int) -> list[str]:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            response = http.get(
                "/v1/runs/r/rollout-queue", params={"limit": 4, "claimer": f"c{i}", "lease_s": 60}
            )
            assert response.status_code == 200, response.text
            return [item["problem_id"] for item in response.json()["items"]]

    def claim_batch(i: int) -> list[str]:
        body = {
            "size": 1,
            "seed": i,
            "fill": "unseen",
            "skip_leased": True,
            "lease": {"claimer": f"b{i}", "ttl_s": 60},
        }
        with httpx.Client(base_url=server.url, timeout=30) as http:
            response = http.post("/v1/runs/r/batches", json=body)
            assert response.status_code == 200, response.text
            return [item["problem_id"] for item in response.json()["items"]]

    claimed = [pid for ids in run_together(claim_queue) for pid in ids]
    assert len(claimed) == THREADS * 4 == len(set(claimed))
    drawn = [pid for ids in run_together(claim_batch) for pid in ids]
    assert len(drawn) == THREADS == len(set(drawn)) and not set(drawn) & set(claimed)


def test_ranks_with_one_draw_key_get_one_batch_while_outcomes_arrive(backend_url, start_server):
    server = start_server(backend_url)
    ids = setup_run(server.url, problems=40)
    spec = {"size": 6, "seed": 3, "fill": "unseen_then_uniform", "skip_leased": True}

    def rank(i: int) -> list[str]:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            if i % 2:  # half the threads post outcomes, so the weights move mid-draw
                outcomes = [{"problem_id": p, "attempts": 4, "successes": i % 4} for p in ids[:20]]
                response = http.post("/v1/runs/r/outcomes", json={"outcomes": outcomes})
                assert response.status_code == 200, response.text
            body = {**spec, "draw_key": "step-0", "lease": {"claimer": f"rank{i}"}}
            response = http.post("/v1/runs/r/batches", json=body)
            assert response.status_code == 200, response.text
            return [item["problem_id"] for item in response.json()["items"]]

    batches = run_together(rank)
    assert all(batch == batches[0] for batch in batches) and len(batches[0]) == 6
