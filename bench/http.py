"""HTTP load: a real uvicorn server over a run of N problems, clients mixing batch draws
(size 512) and outcome posts. Prints one JSON object per configuration.

Configurations: one client (sequential batch draws), `--clients` concurrent clients
(default 32) at a 9:1 mix of batches to outcome posts, and `--clients` clients drawing
batches only, in the columnar format the typed clients ask for (issue 25's target on 2
workers: >= 1,000 batch requests/s, p99 <= 50 ms; `targets` in that row), for each number
of server workers.
Clients speak raw keep-alive HTTP/1.1 (bench/_loadgen.py) so the load generator, which
shares the cores with the server, stays cheap; the response bodies are read in full.
Run: python bench/http.py [--problems 1000000] [--workers 1,2] [--seconds 15] [--warmup 5]
     [--code DIR]  (DIR's service: a before/after pair, bench/_code.py)
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
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time

import httpx
import numpy as np

from bench._loadgen import Connection  # noqa: E402
from bench._seed import seed_run  # noqa: E402
from bench._server import serve  # noqa: E402
from bench._targets import target  # noqa: E402
from service import migrate  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values) * 1000, q)), 2) if values else float("nan")


COLUMNS = {"accept": "application/vnd.paced.batch-columns+json"}


async def client_loop(
    base: str, deadline: float, seed: int, n: int, lat: dict, post_every: int, headers=None
) -> None:
    rng = np.random.default_rng(seed)
    conn = await Connection.open(base)
    try:
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            if post_every and i % post_every == post_every - 1:
                ids = rng.integers(0, n, 64)
                body = {
                    "outcomes": [
                        {"problem_id": f"p{j}", "attempts": 8, "successes": int(rng.integers(0, 9))}
                        for j in ids
                    ]
                }
                payload = json.dumps(body).encode()
                t0 = time.perf_counter()
                status, _ = await conn.post(
                    "/v1/runs/run/outcomes", payload, {"idempotency-key": f"c{seed}-{i}"}
                )
                lat["outcomes"].append(time.perf_counter() - t0)
            else:
                payload = json.dumps({"size": 512, "seed": int(rng.integers(1 << 31))}).encode()
                t0 = time.perf_counter()
                status, _ = await conn.post("/v1/runs/run/batches", payload, headers)
                lat["batches"].append(time.perf_counter() - t0)
            if status >= 400:
                lat["errors"].append(status)
    finally:
        await conn.close()


def settle(base: str, timeout_s: float = 600) -> float:
    """Wait until every worker's prompt cache stops growing by itself (the background
    prefill), so the timed loads find the texts in memory; returns the seconds waited. Each
    poll opens a new connection (SO_REUSEPORT spreads them over the workers): settled when
    two rounds of polls see the same set of values."""
    start, last = time.monotonic(), None
    while time.monotonic() - start < timeout_s:
        seen = set()
        for _ in range(8):
            text = httpx.get(base + "/metrics", timeout=30).text
            seen |= {
                line.split()[-1]
                for line in text.splitlines()
                if line.startswith('paced_prompt_cache{what="bytes"}')
            }
        if seen == last:
            break
        last = seen
        time.sleep(2.0)
    return round(time.monotonic() - start, 1)


async def one_client(base: str, requests: int) -> list[float]:
    """Sequential batch draws on one keep-alive connection; latency of each."""
    conn = await Connection.open(base)
    latencies = []
    try:
        for i in range(requests):
            payload = json.dumps({"size": 512, "seed": i}).encode()
            t0 = time.perf_counter()
            status, _ = await conn.post("/v1/runs/run/batches", payload)
            latencies.append(time.perf_counter() - t0)
            assert status == 200, status
    finally:
        await conn.close()
    return latencies


async def load(
    base: str, clients: int, seconds: float, n: int, post_every: int, headers=None
) -> dict:
    lat: dict[str, list] = {"batches": [], "outcomes": [], "errors": []}
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    await asyncio.gather(
        *(client_loop(base, deadline, s, n, lat, post_every, headers) for s in range(clients))
    )
    elapsed = time.perf_counter() - start
    return {
        "batch_requests_per_s": round(len(lat["batches"]) / elapsed, 1),
        "outcome_requests_per_s": round(len(lat["outcomes"]) / elapsed, 1),
        "batches_p50_ms": pct(lat["batches"], 50),
        "batches_p99_ms": pct(lat["batches"], 99),
        "outcomes_p50_ms": pct(lat["outcomes"], 50),
        "outcomes_p99_ms": pct(lat["outcomes"], 99),
        "errors": len(lat["errors"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--code", default=None, help="serve this checkout's code (a pair)")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    machine = f"{platform.machine()} cores={os.cpu_count()}"
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        migrate.upgrade(db_url)
        t0 = time.perf_counter()
        seed_run(db_url, args.problems)
        seed_s = time.perf_counter() - t0
        for workers in [int(w) for w in args.workers.split(",")]:
            with serve(
                db_url, Path(tmp), workers=workers, extra_env={"PACED_SYNC_INTERVAL_S": "0.5"}
            ) as base:
                t0 = time.perf_counter()
                with httpx.Client(base_url=base, timeout=120) as http:
                    # Cold start: the first batch builds the index from the database. Each
                    # request on a new connection (SO_REUSEPORT spreads them over the
                    # workers), so that every worker has its index and prefill before timing.
                    for _ in range(workers * 8):
                        http.post(
                            "/v1/runs/run/batches",
                            json={"size": 512, "seed": 0},
                            headers={"connection": "close"},
                        ).raise_for_status()
                    first_batch_s = time.perf_counter() - t0
                settled_s = settle(base)
                asyncio.run(one_client(base, 100))  # texts the draws may newly reach
                single = asyncio.run(one_client(base, 300))
                one = {
                    "bench": "http",
                    "config": "one-client",
                    "problems": args.problems,
                    "workers": workers,
                    "batch_size": 512,
                    "requests": len(single),
                    "p50_ms": pct(single, 50),
                    "p99_ms": pct(single, 99),
                    "median_ms": round(statistics.median(single) * 1000, 2),
                    "cold_start_first_batches_s": round(first_batch_s, 2),
                    "prefill_settled_s": settled_s,
                    "seed_db_s": round(seed_s, 1),
                    "label": args.label,
                    "machine": machine,
                }
                print(json.dumps(one), flush=True)
                # Warm-up under the same load (prompt cache, allocator), not measured.
                asyncio.run(load(base, args.clients, args.warmup, args.problems, post_every=10))
                result = asyncio.run(
                    load(base, args.clients, args.seconds, args.problems, post_every=10)
                )
                print(
                    json.dumps(
                        {
                            "bench": "http",
                            "config": f"{args.clients}-clients-mixed",
                            "problems": args.problems,
                            "workers": workers,
                            "batch_size": 512,
                            "outcomes_per_post": 64,
                            "seconds": args.seconds,
                            "warmup_seconds": args.warmup,
                            **result,
                            "label": args.label,
                            "machine": machine,
                        }
                    ),
                    flush=True,
                )
                asyncio.run(load(base, args.clients, args.warmup, args.problems, 0, COLUMNS))
                only = asyncio.run(
                    load(base, args.clients, args.seconds, args.problems, 0, COLUMNS)
                )
                row = {
                    "bench": "http",
                    "config": f"{args.clients}-clients-batches",
                    "problems": args.problems,
                    "workers": workers,
                    "batch_size": 512,
                    "format": "columns",
                    "seconds": args.seconds,
                    "warmup_seconds": args.warmup,
                    **{k: v for k, v in only.items() if "outcome" not in k},
                    "label": args.label,
                    "machine": machine,
                }
                if workers == 2 and args.clients == 32:
                    where = {"problems": args.problems, "workers": 2, "clients": 32}
                    row["targets"] = [
                        target("32 clients, 2 workers: batch requests/s",
                               only["batch_requests_per_s"], ">=", 1000, **where),
                        target("32 clients, 2 workers: batch p99 ms", only["batches_p99_ms"],
                               "<=", 50, **where),
                    ]  # fmt: skip
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
