"""Memory of a serving process per problem, at N = 1e5 and 1e6 (docs/operations.md: sizing).

For each N: a SQLite run of N problems with outcomes (bench/_seed.py), a real `paced serve`,
and its resident set size (VmRSS of the process) at three moments: started (no dataset
touched), after the first batch (the run's index in memory), and once the background
prompt prefill has settled (texts cached; bounded by PACED_PROMPT_CACHE_MB). Per-problem
figures are the growth over the started process divided by N. Prints one JSON line per N.

    python bench/memory.py [--sizes 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

# Run as `python bench/memory.py`: drop bench/ from the path (bench/http.py would shadow the
# standard library's http package) and put the repository root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import httpx

from bench._seed import seed_run
from bench._server import PIDS, serve
from service import migrate

SETTLE_S = 2.0  # RSS unchanged for this long: the prefill is done
SETTLE_TIMEOUT_S = 300.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def settled_rss(pid: int) -> float:
    """RSS once it stopped growing for SETTLE_S (the prefill runs while no request is)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last, since = rss_mb(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = rss_mb(pid)
        if abs(now - last) > 0.5:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= SETTLE_S:
            return now
    return last


def measure(n: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="paced-mem-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'paced.db'}"
        migrate.upgrade(url)
        seed_run(url, n)
        with serve(url, Path(tmp)) as base:
            pid = PIDS[base]
            started = settled_rss(pid)
            answer = httpx.post(
                f"{base}/v1/runs/run/batches", json={"size": 512, "seed": 0}, timeout=300
            )  # cold: the first batch loads the index of N problems
            answer.raise_for_status()
            indexed = rss_mb(pid)
            prefilled = settled_rss(pid)
    return {
        "bench": "memory",
        "problems": n,
        "rss_started_mb": round(started, 1),
        "rss_after_first_batch_mb": round(indexed, 1),
        "rss_after_prefill_mb": round(prefilled, 1),
        "index_bytes_per_problem": round((indexed - started) * 2**20 / n, 1),
        "total_bytes_per_problem": round((prefilled - started) * 2**20 / n, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    for n in args.sizes:
        print(json.dumps(measure(n)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
