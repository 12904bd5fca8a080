"""Two real service processes on one PostgreSQL stay consistent within the sync interval."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from service.spawn import ServiceProcess
from tests.conftest import wipe


def replica(database_url: str, workdir: Path) -> ServiceProcess:
    """A started replica that pulls other processes' writes every 0.25 s."""
    settings = {"PACED_SYNC_INTERVAL_S": "0.25"}
    return ServiceProcess(workdir=workdir, database_url=database_url, settings=settings).start()


@pytest.mark.postgres
def test_replicas_converge_within_one_second(pg_database_url, tmp_path):
    wipe(pg_database_url)
    replicas: list[ServiceProcess] = []
    try:
        replicas.append(replica(pg_database_url, tmp_path))
        replicas.append(replica(pg_database_url, tmp_path))
        a, b = (server.url for server in replicas)
        with httpx.Client(base_url=a, timeout=10) as ha, httpx.Client(base_url=b, timeout=10) as hb:
            ha.post("/v1/datasets", json={"name": "math"})
            ha.post(
                "/v1/datasets/math/problems",
                json={"problems": [{"id": f"p{i}", "prompt": "x"} for i in range(50)]},
            )
            ha.post("/v1/runs", json={"name": "r", "dataset": "math"})
            ha.post(
                "/v1/runs/r/outcomes",
                json={"outcomes": [{"problem_id": "p0", "attempts": 4, "successes": 2}]},
            )
            # B builds its index now, then must learn about A's later writes by deltas.
            assert (
                hb.post("/v1/runs/r/batches", json={"size": 50, "seed": 1}).json()["available"] == 1
            )
            lags = []
            for i in range(1, 6):
                ha.post(
                    "/v1/runs/r/outcomes",
                    json={"outcomes": [{"problem_id": f"p{i}", "attempts": 4, "successes": 1}]},
                )
                accepted_at = time.monotonic()
                while True:
                    body = hb.post("/v1/runs/r/batches", json={"size": 50, "seed": 1}).json()
                    if f"p{i}" in {item["problem_id"] for item in body["items"]}:
                        lags.append(time.monotonic() - accepted_at)
                        break
                    assert time.monotonic() - accepted_at < 1.0, "replica B lagged over 1 s"
                    time.sleep(0.02)
                weights = hb.post("/v1/runs/r/weights", json={"problem_ids": [f"p{i}"]}).json()
                assert weights["items"][0]["weight"] == pytest.approx(0.1875)
            assert max(lags) < 1.0
            # And the other direction: writes to B reach A's batches.
            hb.post(
                "/v1/runs/r/outcomes",
                json={"outcomes": [{"problem_id": "p9", "attempts": 2, "successes": 1}]},
            )
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                items = ha.post("/v1/runs/r/batches", json={"size": 50, "seed": 2}).json()["items"]
                if "p9" in {item["problem_id"] for item in items}:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("replica A did not see B's write within 1 s")
    finally:
        for server in replicas:
            server.stop()
