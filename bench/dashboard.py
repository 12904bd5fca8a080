"""Dashboard server time on a large run: the HTML page, its overview JSON and the history;
across runs: the runs overview (/v1/runs-summary) over 200 runs and the compare endpoint
for 5 runs of N problems each.

Prints one JSON object: median and p90 ms over warm requests (in-process, so it is server
time without the network), N problems (default 1e6; in `run` and each compared run every
problem has outcomes: a third never solved, a third always, a third in between; the other
runs have none), 512 history points per run (the default cap).
Run: python bench/dashboard.py [--problems 1000000] [--repeats 20] [--runs 200]
     [--compare-runs 5] [--backend sqlite|postgres]
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import bench  # noqa: E402,F401  (this checkout's bench package, whatever --code says)
from bench._code import use_code_from_argv  # noqa: E402

use_code_from_argv()  # before anything imports `service`

import argparse
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time

from fastapi.testclient import TestClient

from bench._seed import seed_more_runs, seed_run
from bench._server import pg_database
from service import migrate
from service.app import create_app
from service.settings import Settings


def timed(client: TestClient, path: str, repeats: int) -> tuple[float, float]:
    """(median, p90) in ms of warm GETs of path."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        client.get(path).raise_for_status()
        times.append(time.perf_counter() - t0)
    median = round(statistics.median(times) * 1000, 1)
    return median, round(sorted(times)[int(0.9 * len(times)) - 1] * 1000, 1)


@contextlib.contextmanager
def database(backend: str):
    if backend == "postgres":
        with pg_database() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/bench.db"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--runs", type=int, default=200, help="runs in the runs overview")
    parser.add_argument("--compare-runs", type=int, default=5)
    parser.add_argument("--history-points", type=int, default=512)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--code", default=None, help="this checkout's service (a pair)")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    compared = [f"cmp-{i}" for i in range(args.compare_runs)]
    bare = [f"arm-s{i:03d}" for i in range(args.runs - 1 - len(compared))]
    with database(args.backend) as url:
        migrate.upgrade(url)
        t0 = time.perf_counter()
        seed_run(url, args.problems)
        seed_more_runs(url, stats_runs=compared, bare_runs=bare, history_points=args.history_points)
        seeded = time.perf_counter() - t0
        app = create_app(Settings(database_url=url, sync_interval_s=60))
        with TestClient(app) as client:
            t0 = time.perf_counter()
            client.get("/v1/runs/run/overview").raise_for_status()  # loads the run into memory
            cold = time.perf_counter() - t0
            result = {
                "bench": "dashboard",
                "backend": args.backend,
                "problems": args.problems,
                "seed_s": round(seeded, 1),
                "cold_first_overview_s": round(cold, 2),
            }
            for path in ("/runs/run", "/v1/runs/run/overview", "/v1/runs/run/history"):
                key = path.rsplit("/", 1)[-1] if path.startswith("/v1") else "page"
                result[f"{key}_median_ms"], result[f"{key}_p90_ms"] = timed(
                    client, path, args.repeats
                )
            result["overview_bytes"] = len(client.get("/v1/runs/run/overview").content)

            summary = client.get("/v1/runs-summary")
            assert len(summary.json()["items"]) == args.runs
            result["runs"] = args.runs
            result["history_points_per_run"] = args.history_points
            result["runs_summary_median_ms"], result["runs_summary_p90_ms"] = timed(
                client, "/v1/runs-summary", args.repeats
            )
            result["runs_summary_bytes"] = len(summary.content)

            compare = "/v1/compare?runs=" + ",".join(compared)
            t0 = time.perf_counter()
            body = client.get(compare)
            result["cold_first_compare_s"] = round(time.perf_counter() - t0, 2)
            assert len(body.json()["differences"]) == 20
            result["compared_runs"] = len(compared)
            result["compare_median_ms"], result["compare_p90_ms"] = timed(
                client, compare, args.repeats
            )
            result["compare_bytes"] = len(body.content)
            result["label"] = args.label
            result["machine"] = f"{platform.machine()} cores={os.cpu_count()}"
        app.state.ctx.engine.dispose()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
