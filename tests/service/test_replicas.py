"""Two real service processes on one PostgreSQL stay consistent within the sync interval."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wipe
from trainer_client.trainer.local_service import wait_healthy

ROOT = Path(__file__).resolve().parents[2]


def start_server(database_url: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACED_")}
    env.update({"PYTHONPATH": str(ROOT), "PACED_SYNC_INTERVAL_S": "0.25"})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--port",
            str(port),
            "--database-url",
            database_url,
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, url


@pytest.mark.postgres
def test_replicas_converge_within_one_second(pg_database_url, tmp_path):
    wipe(pg_database_url)
    procs = []
    try:
        a_proc, a = start_server(pg_database_url, tmp_path)
        procs.append(a_proc)
        b_proc, b = start_server(pg_database_url, tmp_path)
        procs.append(b_proc)
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
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
