"""Dashboard server time on a large run: the HTML page, its overview JSON and the history.

Prints one JSON object: median and p90 ms over warm requests (in-process, so it is server
time without the network), N problems (default 1e6, half of them with outcomes).
Run: python bench/dashboard.py [--problems 1000000] [--repeats 20]
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

from fastapi.testclient import TestClient

from bench._seed import seed_run
from service import migrate
from service.app import create_app
from service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrate.upgrade(url)
        seed_run(url, args.problems)
        app = create_app(Settings(database_url=url, sync_interval_s=60))
        with TestClient(app) as client:
            t0 = time.perf_counter()
            client.get("/v1/runs/run/overview").raise_for_status()  # loads the run into memory
            cold = time.perf_counter() - t0
            result = {
                "bench": "dashboard",
                "problems": args.problems,
                "cold_first_overview_s": round(cold, 2),
            }
            for path in ("/runs/run", "/v1/runs/run/overview", "/v1/runs/run/history"):
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    client.get(path).raise_for_status()
                    times.append(time.perf_counter() - t0)
                key = path.rsplit("/", 1)[-1] if path.startswith("/v1") else "page"
                result[f"{key}_median_ms"] = round(statistics.median(times) * 1000, 1)
                result[f"{key}_p90_ms"] = round(sorted(times)[int(0.9 * len(times)) - 1] * 1000, 1)
            result["overview_bytes"] = len(client.get("/v1/runs/run/overview").content)
            result["machine"] = f"{platform.machine()} cores={os.cpu_count()}"
        app.state.ctx.engine.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
