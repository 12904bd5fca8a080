"""`paced serve` in an empty directory, driven over real HTTP on a free port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.spawn import ServiceProcess


@pytest.fixture
def served(tmp_path: Path):
    """`paced serve` in an empty directory, without any PACED_ setting from outside."""
    with ServiceProcess(workdir=tmp_path) as server:
        yield server.url, tmp_path


def test_serve_creates_sqlite_db_and_serves_the_api(served):
    url, workdir = served
    assert (workdir / "paced.db").exists()
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/v1/datasets", json={"name": "arith"}).status_code == 201
        problems = [{"id": f"q{i}", "prompt": f"{i}+{i}=", "answer": str(2 * i)} for i in range(20)]
        assert http.post("/v1/datasets/arith/problems", json={"problems": problems}).json() == {
            "inserted": 20,
            "updated": 0,
        }
        assert http.post("/v1/runs", json={"name": "r", "dataset": "arith"}).status_code == 201
        queue = http.get("/v1/runs/r/rollout-queue", params={"limit": 20}).json()["items"]
        assert {i["reason"] for i in queue} == {"unseen"} and len(queue) == 20
        outcomes = [
            {"problem_id": f"q{i}", "attempts": 8, "successes": i % 9, "step": 0} for i in range(20)
        ]
        response = http.post(
            "/v1/runs/r/outcomes", json={"outcomes": outcomes}, headers={"Idempotency-Key": "once"}
        )
        assert response.json() == {"accepted": 20}
        replay = http.post(
            "/v1/runs/r/outcomes", json={"outcomes": outcomes}, headers={"Idempotency-Key": "once"}
        )
        assert replay.json() == {"accepted": 20}
        assert http.get("/v1/runs/r/problems/q3").json()["attempts"] == 8
        batch = http.post("/v1/runs/r/batches", json={"size": 5, "seed": 42}).json()
        assert len(batch["items"]) == 5
        assert all(0 < i["pass_rate"] < 1 for i in batch["items"])
        again = http.post("/v1/runs/r/batches", json={"size": 5, "seed": 42}).json()
        assert again == batch
        zones = http.get("/v1/runs/r/difficulty").json()["zones"]
        assert zones == {"unseen": 0, "intractable": 3, "frontier": 15, "mastered": 2}
        weights = http.post("/v1/runs/r/weights", json={"limit": 100}).json()
        assert len(weights["items"]) == 20
        assert http.get("/v1/runs/r").json()["step"] == 0
        assert "paced_batches_served_total" in http.get("/metrics").text


def test_serve_with_workers_spreads_connections_and_stops_cleanly(tmp_path):
    """--workers 2: two processes with their own SO_REUSEPORT sockets, one database."""
    server = ServiceProcess(workdir=tmp_path, args=("--workers", "2")).start()
    try:
        url = server.url
        # Fresh connections are hashed across both workers' sockets: see two process ids
        # through the metrics each process keeps for itself (requests counted per process).
        assert httpx.post(f"{url}/v1/datasets", json={"name": "d"}).status_code == 201
        seen = set()
        for _ in range(40):
            with httpx.Client(base_url=url) as http:
                seen.add(http.get("/metrics").text.count('route="/v1/datasets"'))
                assert http.get("/v1/datasets/d").status_code == 200  # same database
        assert len(seen) == 2  # one process saw the POST, the other did not
    finally:
        assert server.stop() == 0
