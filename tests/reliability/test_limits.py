"""Configured limits are enforced by a real server and reported in the errors they cause."""

from __future__ import annotations

import httpx

from tests.reliability.servers import setup_run

LIMITS = {
    "PACED_MAX_BODY_BYTES": "4000",
    "PACED_MAX_ITEMS_PER_REQUEST": "5",
    "PACED_MAX_BATCH_SIZE": "3",
}


def outcomes(n: int) -> dict:
    return {"outcomes": [{"problem_id": f"q{i}", "attempts": 2, "successes": 1} for i in range(n)]}


def test_body_items_and_batch_limits_are_enforced_and_explained(backend_url, start_server):
    server = start_server(backend_url, env=LIMITS)
    setup_run(server.url, problems=5)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # Body cap, declared by Content-Length: refused before the body is read.
        big = http.post("/v1/runs/r/outcomes", content=b"{" + b" " * 5000 + b"}")
        assert big.status_code == 413
        assert big.json()["limit_bytes"] == 4000 and "4000" in big.json()["detail"]

        # Body cap, chunked upload with no Content-Length: counted while streaming.
        def chunks():
            for _ in range(10):
                yield b" " * 1000

        streamed = http.post(
            "/v1/runs/r/outcomes", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413 and streamed.json()["limit_bytes"] == 4000

        # Items per request: one over the limit is refused with the limit in the error...
        too_many = http.post("/v1/runs/r/outcomes", json=outcomes(6))
        assert too_many.status_code == 422
        (error,) = too_many.json()["detail"]
        assert error["loc"] == ["body", "outcomes"]
        assert error["ctx"] == {"limit": 5, "count": 6}
        # ...and nothing of it was applied, while exactly the limit is accepted.
        assert http.post("/v1/runs/r/weights", json={}).json()["items"][0]["attempts"] == 0
        assert http.post("/v1/runs/r/outcomes", json=outcomes(5)).json() == {"accepted": 5}
        many_ids = http.post("/v1/runs/r/weights", json={"problem_ids": ["q0"] * 6})
        assert many_ids.status_code == 422 and many_ids.json()["detail"][0]["ctx"]["limit"] == 5

        # Batch size cap.
        batch = http.post("/v1/runs/r/batches", json={"size": 4, "seed": 1})
        assert batch.status_code == 422
        (error,) = batch.json()["detail"]
        assert error["loc"] == ["body", "size"] and error["ctx"] == {"limit": 3}
        assert len(http.post("/v1/runs/r/batches", json={"size": 3, "seed": 1}).json()["items"])

        # The server is still healthy after refusing all of that.
        assert http.get("/healthz").status_code == 200


def test_the_client_reads_the_limits_the_server_advertises(backend_url, start_server):
    from trainer_client.client import PacedClient
    from trainer_client.limits import DEFAULT_LIMITS, Limits

    server = start_server(backend_url, env=LIMITS)
    with PacedClient(server.url) as paced:
        assert paced.limits() == Limits(max_items_per_request=5, max_batch_size=3)
        assert paced.limits() != DEFAULT_LIMITS
