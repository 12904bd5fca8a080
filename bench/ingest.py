"""Outcome ingest throughput through the HTTP API, SQLite and PostgreSQL.

Prints one JSON object per backend: outcomes/s over bulk requests (10,000 outcomes each),
median request time, and the time from an acknowledged post until the next batch reflects it.
Run: python bench/ingest.py [--problems 100000] [--requests 20] [--backends sqlite,postgres]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/x.py`: drop bench/ from the path (bench/http.py would shadow the
# standard library's http package) and put the repository root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import bench  # noqa: E402,F401  (this checkout's bench package, whatever --code says)
from bench._code import use_code_from_argv  # noqa: E402

use_code_from_argv()  # before anything imports `service`

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import httpx
import numpy as np

from bench._server import pg_database, serve  # noqa: E402

ITEMS_PER_REQUEST = 10_000


def load_dataset(http: httpx.Client, n: int) -> None:
    http.post("/v1/datasets", json={"name": "bench"}).raise_for_status()
    for start in range(0, n, ITEMS_PER_REQUEST):
        problems = [
            {"id": f"p{i}", "prompt": f"problem {i}"}
            for i in range(start, min(n, start + ITEMS_PER_REQUEST))
        ]
        http.post("/v1/datasets/bench/problems", json={"problems": problems}).raise_for_status()
    http.post("/v1/runs", json={"name": "run", "dataset": "bench"}).raise_for_status()


def run_backend(name: str, url_factory, args) -> dict:
    rng = np.random.default_rng(0)
    with (
        tempfile.TemporaryDirectory() as tmp,
        url_factory(tmp) as db_url,
        serve(db_url, Path(tmp)) as base,
    ):
        with httpx.Client(base_url=base, timeout=120) as http:
            load_dataset(http, args.problems)
            bodies = []
            for r in range(args.requests):
                ids = rng.integers(0, args.problems, ITEMS_PER_REQUEST)
                k = rng.integers(0, 9, ITEMS_PER_REQUEST)
                bodies.append(
                    json.dumps(
                        {
                            "outcomes": [
                                {
                                    "problem_id": f"p{i}",
                                    "attempts": 8,
                                    "successes": int(s),
                                    "step": r,
                                }
                                for i, s in zip(ids, k, strict=True)
                            ]
                        }
                    )
                )
            http.post("/v1/runs/run/batches", json={"size": 1, "mode": "uniform"})  # index built
            times = []
            start = time.perf_counter()
            for r, body in enumerate(bodies):
                t0 = time.perf_counter()
                resp = http.post(
                    "/v1/runs/run/outcomes",
                    content=body,
                    headers={"content-type": "application/json", "Idempotency-Key": f"b{r}"},
                )
                resp.raise_for_status()
                times.append(time.perf_counter() - t0)
            total = time.perf_counter() - start
            # Visibility: a post on a fresh problem, then how long until a batch contains it.
            lags = []
            for j in range(5):
                pid = f"p{args.problems - 1 - j}"
                body = {"outcomes": [{"problem_id": pid, "attempts": 1000, "successes": 500}]}
                http.post("/v1/runs/run/outcomes", json=body).raise_for_status()
                t0 = time.perf_counter()
                while True:
                    w = http.post("/v1/runs/run/weights", json={"problem_ids": [pid]}).json()
                    batch = http.post("/v1/runs/run/batches", json={"size": 4096, "seed": j}).json()
                    if w["items"][0]["attempts"] >= 1000 and batch["available"] > 0:
                        lags.append(time.perf_counter() - t0)
                        break
    n = ITEMS_PER_REQUEST * args.requests
    return {
        "bench": "ingest",
        "backend": name,
        "problems": args.problems,
        "requests": args.requests,
        "outcomes_per_request": ITEMS_PER_REQUEST,
        "outcomes_per_s": round(n / total),
        "median_request_ms": round(statistics.median(times) * 1000, 1),
        "p90_request_ms": round(sorted(times)[int(0.9 * len(times)) - 1] * 1000, 1),
        "visible_to_next_batch_ms_median": round(statistics.median(lags) * 1000, 2),
        "machine": f"{platform.machine()} cores={os.cpu_count()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--code", default=None, help="serve this checkout's code (a pair)")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    import contextlib

    factories = {
        "sqlite": lambda tmp: contextlib.nullcontext(f"sqlite:///{tmp}/bench.db"),
        "postgres": lambda tmp: pg_database(),
    }
    for backend in args.backends.split(","):
        row = run_backend(backend, factories[backend], args)
        print(json.dumps({**row, "label": args.label}), flush=True)


if __name__ == "__main__":
    main()
