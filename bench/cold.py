"""First draws after a dataset's first use, and what the background work they start does to
another client's requests. Prints one JSON object per phase and one with issue 25's targets.

One `paced serve` (1 worker, SQLite, default settings) over two datasets of N problems each:
`bench` (run `run`), warm and settled, and `cold` (run `cold-run`), never used yet. Two
typed sync clients, each drawing a B-item batch every --gap seconds (a trainer's pace; the
prompt-cache prefill runs only in gaps without a request, domain/sampler.py), the second
half a gap after the first:
- quiet: the warm client alone on its schedule (the `cold` dataset untouched);
- first use: the cold client's first draw (builds the index, starts the prefill: its time
  is `first_use_s`), then both clients on their schedules while the prefill fills the
  prompt cache in the background: the cold client's draws are the first draws of problems
  never served (texts from the database unless the prefill got there first);
- after: once the cache has settled, the same pair of schedules again.
Then --cycles - 1 more times: an overwrite of one problem of `cold` (its texts dropped, the
prefill starts over), both schedules during the refill, and after it.
The same-run pairs: the warm client's latency during the background work against after it,
cycle by cycle; the targets take the median over the cycles.

Run: python bench/cold.py [--problems 1000000] [--batch-size 512] [--rounds 60] [--gap 0.2]
     [--code DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import bench  # noqa: E402,F401  (this checkout's bench package, whatever --code says)
from bench._code import served_code, use_code_from_argv  # noqa: E402

use_code_from_argv()  # before anything imports `service`

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from bench._seed import seed_run  # noqa: E402
from bench._server import PIDS, cpu_seconds, serve  # noqa: E402
from bench._targets import target  # noqa: E402
from service import migrate  # noqa: E402
from trainer_client import PacedClient  # noqa: E402

MACHINE = f"{platform.machine()} cores={os.cpu_count()}"
WARM, COLD = "run", "cold-run"
# "No slow-down": the warm client's p50 while the background work runs, over its p50 after,
# at most this (the tolerance is for a shared machine's noise, not for the prefill).
SLOWDOWN_LIMIT = 1.15
# Cycles after the first: this upsert (p0's own text) moves the dataset's content version,
# so every process drops the dataset's texts and a prefill starts over.
OVERWRITE = {"id": "p0", "prompt": "What is 0 + 0?", "answer": "0"}


def emit(row: dict) -> None:
    print(json.dumps({"bench": "cold", **row, "machine": MACHINE}), flush=True)


def pct(times: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(times) * 1000, q)), 3) if times else float("nan")


def cache_bytes(paced: PacedClient) -> float:
    for line in paced._http.get("/metrics").text.splitlines():
        if line.startswith('paced_prompt_cache{what="bytes"}'):
            return float(line.split()[-1])
    return 0.0


def settle(paced: PacedClient, timeout_s: float = 600) -> float:
    """Wait until the prompt cache stops growing by itself; returns the seconds waited."""
    start = time.monotonic()
    last = -1.0
    while time.monotonic() - start < timeout_s:
        held = cache_bytes(paced)
        if held == last:
            break
        last = held
        time.sleep(1.0)
    return round(time.monotonic() - start, 1)


def on_schedule(base: str, run: str, size: int, start: float, gap: float, rounds: int,
                seed0: int, times: list[float]) -> None:  # fmt: skip
    """Draw at start, start + gap, ... (a fresh seed each), timing each draw."""
    with PacedClient(base, timeout=120) as paced:
        paced.batch(run, 1, seed=0)  # the connection is open, as a trainer's would be
        for i in range(rounds):
            delay = start + i * gap - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            batch = paced.batch(run, size, seed=seed0 + i)
            times.append(time.perf_counter() - t0)
            assert batch.items


def both_on_schedule(base: str, args, seed0: int, with_cold: bool) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {WARM: [], COLD: []}
    start = time.perf_counter() + 0.5
    runs = [(WARM, 0.0)] + ([(COLD, args.gap / 2)] if with_cold else [])
    threads = [
        threading.Thread(
            target=on_schedule,
            args=(
                base,
                run,
                args.batch_size,
                start + offset,
                args.gap,
                args.rounds,
                seed0,
                times[run],
            ),
        )  # fmt: skip
        for run, offset in runs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times


def phase_row(phase: str, times: dict[str, list[float]], **extra) -> dict:
    row = {"config": "phase", "phase": phase, **extra}
    for run, label in ((WARM, "warm_client"), (COLD, "cold_client")):
        if times[run]:
            row[f"{label}_p50_ms"] = pct(times[run], 50)
            row[f"{label}_p99_ms"] = pct(times[run], 99)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between a client's draws")
    parser.add_argument("--cycles", type=int, default=3, help="first use, then overwrites")
    parser.add_argument("--code", default=None, help="serve this checkout's code (a pair)")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    n = args.problems
    common = {"problems": n, "batch_size": args.batch_size, "label": args.label}
    emit({"config": "meta", "code": served_code(), "gap_s": args.gap, **common})
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/bench.db"
        migrate.upgrade(db_url)
        seed_run(db_url, n)
        seed_run(db_url, n, seed=1, dataset="cold", run=COLD)
        with serve(db_url, Path(tmp), extra_env={"PACED_SYNC_INTERVAL_S": "0.5"}) as base:
            pid = PIDS[base]
            with PacedClient(base, timeout=300) as paced:
                paced.batch(WARM, 1, seed=0)  # the warm dataset's first use
                settle(paced)
                for seed in range(10**6, 10**6 + 40):  # texts the draws may reach
                    paced.batch(WARM, 4096, seed=seed)
                quiet = both_on_schedule(base, args, 10**7, with_cold=False)
                emit(phase_row("quiet", quiet, **common))
                cold_p50s, slowdowns, p99_ratios = [], [], []
                for cycle in range(args.cycles):
                    held0, cpu0 = cache_bytes(paced), cpu_seconds(pid)
                    if cycle:  # an overwrite drops the dataset's texts: the prefill restarts
                        paced.upsert_problems("cold", [OVERWRITE])
                    t0 = time.perf_counter()
                    paced.batch(COLD, args.batch_size, seed=cycle + 1)
                    first_s = time.perf_counter() - t0
                    seed0 = (cycle + 2) * 10**7
                    during = both_on_schedule(base, args, seed0, with_cold=True)
                    held1 = cache_bytes(paced)
                    emit(
                        phase_row(
                            "first use" if cycle == 0 else "after an overwrite",
                            during,
                            cycle=cycle,
                            first_draw_s=round(first_s, 3),
                            prefilled_mb_during=round((held1 - held0) / 2**20, 1),
                            server_cpu_s=round(cpu_seconds(pid) - cpu0, 2),
                            **common,
                        )
                    )
                    waited = settle(paced)
                    after = both_on_schedule(base, args, seed0 + 10**6, with_cold=True)
                    emit(
                        phase_row(
                            "after",
                            after,
                            cycle=cycle,
                            settled_after_s=waited,
                            cache_mb=round(cache_bytes(paced) / 2**20, 1),
                            **common,
                        )
                    )
                    cold_p50s.append(pct(during[COLD], 50))
                    slowdowns.append(pct(during[WARM], 50) / pct(after[WARM], 50))
                    p99_ratios.append(pct(during[WARM], 99) / pct(after[WARM], 99))
    slowdown = round(float(np.median(slowdowns)), 3)
    cold_p50 = round(float(np.median(cold_p50s)), 3)
    where = {"problems": n, "batch_size": args.batch_size, "cycles": args.cycles}
    emit(
        {
            "config": "targets",
            **common,
            "cold_client_p50_ms_by_cycle": cold_p50s,
            "warm_client_p50_during_over_after_by_cycle": [round(x, 3) for x in slowdowns],
            "warm_client_p99_during_over_after_by_cycle": [round(x, 3) for x in p99_ratios],
            "targets": [
                target(
                    "first draws after first use (cold), p50 ms, median of cycles",
                    cold_p50,
                    "<=",
                    10.0,
                    **where,
                ),
                target(
                    "another client's p50 during background work over after, median",
                    slowdown,
                    "<=",
                    SLOWDOWN_LIMIT,
                    **where,
                ),
            ],
        }  # fmt: skip
    )


if __name__ == "__main__":
    main()
