"""Performance as a trainer feels it: the project's typed clients against a real server, next
to in-process numpy baselines, in the same run. Prints one JSON object per configuration.

Batch draws (`config: "batch"`): `PacedClient.batch` (sync) and `AsyncPacedClient.batch`
(async), plus raw keep-alive HTTP (bytes only, bench/_loadgen.py: the wire's own cost) for
comparison; every request a fresh seed (a new draw). N problems on SQLite, batch size B:
- warm: the prompt cache holds the texts of (nearly) every problem a draw can return (filled
  by size-4096 draws first; `cache_hit_ratio` says how warm it really was);
- cold: right before each timed draw the cache is emptied the way production empties it (an
  upsert that overwrites a problem bumps the dataset's content version), so every text of
  the draw comes from the database. One size-1 draw in between absorbs the index re-sync
  that the same upsert triggers, so the figure is the prompt cache's cold path alone.

Baselines (`config: "numpy"`): in-process draws of B from the same N weights with
`Generator.choice(replace=False, p=w)`, Efraimidis-Spirakis keys + argpartition, and
cumsum + searchsorted (i.i.d.), and the service's own SamplingIndex draw (server compute).

The framework floor (`config: "floor"`): each client against a bare uvicorn + FastAPI app
on the same stack answering the same path with the same bytes a real warm batch of that N
and B carried (bench/_floor.py), measured in the same run right before the warm rows; every
batch row reports its ratio to its client's floor (`p50_over_floor`).

Ingest (`config: "ingest"`): `PacedClient.post_outcomes` with chunks of realistic sizes (one
step's outcomes of a 512 batch, a larger step, the client's request limit), SQLite and
PostgreSQL.

Issue 25's targets (`config: "targets"`, and `targets` in the 10,000-per-post ingest rows):
each with the figure, the limit and met / not met (bench/acceptance.py collects them).

Run: python bench/client.py [--quick] [--problems 10000,100000,1000000] [--batch-sizes ...]
     [--code DIR]  (DIR's service and client: a before/after pair, bench/_code.py)
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
from bench._code import served_code, use_code_from_argv  # noqa: E402

use_code_from_argv()  # before anything imports `service`

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict

from bench._floor import floor_server  # noqa: E402
from bench._loadgen import Connection  # noqa: E402
from bench._seed import seed_run  # noqa: E402
from bench._server import PIDS, cpu_seconds, pg_database, serve  # noqa: E402
from bench._targets import target  # noqa: E402
from service import migrate  # noqa: E402
from service.curriculum import Estimator, EstimatorConfig, KernelConfig, SamplingIndex  # noqa: E402
from trainer_client import AsyncPacedClient, PacedClient, models  # noqa: E402
from trainer_client._batch_format import BATCH_COLUMNS, parse_batch  # noqa: E402
from trainer_client._endpoints import _checked_outcomes  # noqa: E402

MACHINE = f"{platform.machine()} cores={os.cpu_count()}"
RUN = "run"


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=served_code(),
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values) * 1000, q)), 3)


LABEL = {"label": ""}  # --label, in every row


def emit(row: dict) -> None:
    print(json.dumps({"bench": "client", **row, **LABEL, "machine": MACHINE}), flush=True)


# ---- in-process baselines ----------------------------------------------------------------------


def seeded_weights(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pass-rate spread bench/_seed.py stores (same generator, same order)."""
    rng = np.random.default_rng(0)
    third = n // 3
    p_true = np.concatenate(
        [np.zeros(third), np.ones(third), rng.uniform(0.05, 0.95, n - 2 * third)]
    )
    rng.shuffle(p_true)
    successes = rng.binomial(8, p_true).astype(np.float64)
    return np.full(n, 8.0), successes, np.arange(1, n + 1, dtype=np.int64)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 3)


def numpy_baselines(n: int, batch_sizes: list[int], repeats: int) -> dict[int, dict]:
    attempts, successes, ids = seeded_weights(n)
    estimator = Estimator(KernelConfig(), EstimatorConfig())
    weights = estimator.weights(attempts, successes)
    probs = weights / weights.sum()
    index = SamplingIndex.build(ids, estimator, ids, attempts, successes, np.zeros(n, np.int64))
    rng = np.random.default_rng(1)
    slow = max(3, repeats // 4) if n >= 1_000_000 else repeats
    rows = {}
    for b in batch_sizes:

        def es_keys(b=b):
            with np.errstate(divide="ignore"):
                keys = np.log(rng.random(n)) / weights
            return np.argpartition(-keys, b - 1)[:b]

        # choice() raises when fewer weights than b are non-zero (the service returns all).
        choice = (
            (lambda b=b: rng.choice(n, b, replace=False, p=probs))
            if b <= index.n_positive
            else None
        )
        row = {
            "choice_ms": median_ms(choice, slow) if choice else float("nan"),
            "es_argpartition_ms": median_ms(es_keys, slow),
            "cumsum_searchsorted_ms": median_ms(
                lambda b=b: np.searchsorted(np.cumsum(weights), rng.random(b) * weights.sum()),
                slow,
            ),
            "index_ms": median_ms(lambda b=b: index.sample(b, rng, "proportional"), repeats * 4),
        }
        timed = [row["choice_ms"], row["es_argpartition_ms"], row["cumsum_searchsorted_ms"]]
        fastest = min(x for x in timed if x == x)  # NaN: not measured
        row["fastest_numpy_ms"] = fastest
        row["index_vs_fastest_numpy"] = round(fastest / row["index_ms"], 1)
        rows[b] = row
        emit({"config": "numpy", "problems": n, "batch_size": b, **row})
    return rows


# ---- batch draws through the clients ----------------------------------------------------------


def empty_prompt_cache(paced: PacedClient) -> None:
    """Overwrite one problem with its own text: the dataset's content version moves, so the
    server drops every cached text of the dataset (what any real overwrite does)."""
    paced.upsert_problems("bench", [{"id": "p0", "prompt": "What is 0 + 0?", "answer": "0"}])
    paced.batch(RUN, 1, seed=0)  # the upsert also marks the index for a re-sync: absorb it


def cache_metrics(paced: PacedClient) -> dict[str, float]:
    text = paced._http.get("/metrics").text  # the service's own counters
    found = {}
    for line in text.splitlines():
        for what in ("hits", "misses", "bytes"):
            if line.startswith(f'paced_prompt_cache{{what="{what}"}}'):
                found[what] = float(line.split()[-1])
    return found


def cache_counts(paced: PacedClient) -> tuple[float, float]:
    found = cache_metrics(paced)
    return found.get("hits", 0.0), found.get("misses", 0.0)


def settle(paced: PacedClient, timeout_s: float = 300) -> None:
    """Wait until the cache stops growing by itself (a background prefill, where the service
    has one), so no measurement shares the CPU with it."""
    deadline = time.monotonic() + timeout_s
    last = -1.0
    while time.monotonic() < deadline:
        held = cache_metrics(paced).get("bytes", 0.0)
        if held == last:
            return
        last = held
        time.sleep(1.0)


def warm_prompt_cache(paced: PacedClient, n: int, budget_s: float = 90) -> None:
    """Draw size-4096 batches until a draw finds (almost) every text in the cache, or the
    time budget is spent (`cache_hit_ratio` in each row says how warm it got)."""
    seed = 10**9
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        hits0, misses0 = cache_counts(paced)
        for _ in range(4):
            seed += 1
            paced.batch(RUN, 4096, seed=seed)
        hits, misses = cache_counts(paced)
        if misses - misses0 <= 0.01 * max(1.0, hits - hits0 + misses - misses0):
            return


class Seeds:
    """A fresh seed for every request of the whole run."""

    def __init__(self) -> None:
        self.next = 1

    def __call__(self) -> int:
        self.next += 1
        return self.next


def time_sync(paced: PacedClient, b: int, requests: int, seeds: Seeds, cold: bool) -> list[float]:
    times = []
    for _ in range(requests):
        if cold:
            empty_prompt_cache(paced)
        seed = seeds()
        t0 = time.perf_counter()
        batch = paced.batch(RUN, b, seed=seed)
        times.append(time.perf_counter() - t0)
        assert batch.items  # all eligible problems when fewer than b
    return times


async def time_async(
    base: str, paced: PacedClient, b: int, requests: int, seeds: Seeds, cold: bool
) -> list[float]:
    times = []
    async with AsyncPacedClient(base) as client:
        await client.batch(RUN, 1, seed=0)  # the connection, as a trainer's would be open
        for _ in range(requests):
            if cold:
                empty_prompt_cache(paced)
            seed = seeds()
            t0 = time.perf_counter()
            batch = await client.batch(RUN, b, seed=seed)
            times.append(time.perf_counter() - t0)
            assert batch.items  # all eligible problems when fewer than b
    return times


async def time_raw(
    base: str, paced: PacedClient, b: int, requests: int, seeds: Seeds, cold: bool
) -> list[float]:
    times = []
    conn = await Connection.open(base)
    try:
        for _ in range(requests):
            if cold:
                empty_prompt_cache(paced)
            payload = json.dumps({"size": b, "seed": seeds()}).encode()
            t0 = time.perf_counter()
            status, _ = await conn.post(f"/v1/runs/{RUN}/batches", payload)
            times.append(time.perf_counter() - t0)
            assert status == 200, status
    finally:
        await conn.close()
    return times


CLIENTS = ("sync", "async", "raw-http")


def time_client(name: str, base: str, paced: PacedClient, b: int, requests: int, seeds, cold):
    if name == "sync":
        return time_sync(paced, b, requests, seeds, cold)
    if name == "async":
        return asyncio.run(time_async(base, paced, b, requests, seeds, cold))
    return asyncio.run(time_raw(base, paced, b, requests, seeds, cold))


async def response_bytes(base: str, b: int, accept: str | None) -> bytes:
    conn = await Connection.open(base)
    try:
        headers = {"accept": accept} if accept else {}
        body = json.dumps({"size": b, "seed": 12345}).encode()
        status, payload = await conn.post(f"/v1/runs/{RUN}/batches", body, headers)
        assert status == 200, status
        return payload
    finally:
        await conn.close()


def floor_rows(base: str, n: int, b: int, requests: int, seeds: Seeds) -> dict[str, float]:
    """Each client against the framework floor serving this N and B's bytes (the typed
    clients get the columnar body they ask for, raw HTTP the row body); its p50 by client."""
    rows = asyncio.run(response_bytes(base, b, None))
    columns = asyncio.run(response_bytes(base, b, BATCH_COLUMNS))
    floors = {}
    with (
        floor_server(rows, "application/json", columns) as (floor_base, floor_pid),
        PacedClient(floor_base, timeout=120) as floor_paced,
    ):
        for name in CLIENTS:
            time_client(name, floor_base, floor_paced, b, max(3, requests // 10), seeds, False)
            client_cpu0, server_cpu0 = time.process_time(), cpu_seconds(floor_pid)
            times = time_client(name, floor_base, floor_paced, b, requests, seeds, False)
            client_cpu = (time.process_time() - client_cpu0) / len(times)
            server_cpu = (cpu_seconds(floor_pid) - server_cpu0) / len(times)
            floors[name] = pct(times, 50)
            emit(
                {
                    "config": "floor",
                    "client": name,
                    "problems": n,
                    "batch_size": b,
                    "requests": len(times),
                    "response_bytes": len(rows if name == "raw-http" else columns),
                    "p50_ms": floors[name],
                    "p99_ms": pct(times, 99),
                    "client_cpu_ms": round(client_cpu * 1000, 3),
                    "server_cpu_ms": round(server_cpu * 1000, 3),
                }
            )
    return floors


def batch_rows(base: str, n: int, batch_sizes: list[int], args, baselines: dict) -> dict:
    """The batch rows of one N; returns them by (cache, batch size, client)."""
    seeds = Seeds()
    measured: dict[tuple[str, int, str], dict] = {}
    with PacedClient(base, timeout=120) as paced:
        paced.batch(RUN, 1, seed=0)  # builds the index
        settle(paced)
        warm_prompt_cache(paced, n)
        floors = {b: floor_rows(base, n, b, args.requests, seeds) for b in batch_sizes}
        for cache in ("warm", "cold"):
            requests = args.requests if cache == "warm" else args.cold_requests
            for b in batch_sizes:
                for name in CLIENTS:
                    if cache == "warm":
                        # Texts of problems the measured draws may newly reach.
                        time_sync(paced, b, max(3, requests // 10), seeds, cold=False)
                    hits0, misses0 = cache_counts(paced)
                    cold = cache == "cold"
                    # CPU time per request, the client's and the server's: far steadier than
                    # latency on a shared machine (neighbours take wall time, not CPU time).
                    # Cold rows include the upserts that empty the cache.
                    client_cpu0, server_cpu0 = time.process_time(), cpu_seconds(PIDS[base])
                    times = time_client(name, base, paced, b, requests, seeds, cold)
                    client_cpu = (time.process_time() - client_cpu0) / len(times)
                    server_cpu = (cpu_seconds(PIDS[base]) - server_cpu0) / len(times)
                    hits, misses = cache_counts(paced)
                    served = max(1.0, hits - hits0 + misses - misses0)
                    p50 = pct(times, 50)
                    row = {
                        "config": "batch",
                        "client": name,
                        "cache": cache,
                        "problems": n,
                        "batch_size": b,
                        "requests": len(times),
                        "p50_ms": p50,
                        "p99_ms": pct(times, 99),
                        "p99_over_p50": round(pct(times, 99) / p50, 2),
                        "floor_p50_ms": floors[b][name],
                        "p50_over_floor": round(p50 / floors[b][name], 2),
                        "cache_hit_ratio": round((hits - hits0) / served, 3),
                        "client_cpu_ms": round(client_cpu * 1000, 3),
                        "server_cpu_ms": round(server_cpu * 1000, 3),
                    }
                    base_row = baselines.get(b)
                    if base_row:
                        row["numpy_choice_ms"] = base_row["choice_ms"]
                        row["numpy_cumsum_searchsorted_ms"] = base_row["cumsum_searchsorted_ms"]
                        row["fastest_numpy_ms"] = base_row["fastest_numpy_ms"]
                        row["choice_over_client_p50"] = round(base_row["choice_ms"] / p50, 2)
                        row["cumsum_over_client_p50"] = round(
                            base_row["cumsum_searchsorted_ms"] / p50, 2
                        )
                    measured[(cache, b, name)] = row
                    emit(row)
    return measured


def client_targets(n: int, measured: dict) -> None:
    """Issue 25's typed-client targets, from this run's warm sync row of B = 512."""
    row = measured.get(("warm", 512, "sync"))
    if row is None:
        return
    where = {"problems": n, "batch_size": 512}
    emit(
        {
            "config": "targets",
            "problems": n,
            "targets": [
                target("typed sync client p50 ms, warm", row["p50_ms"], "<=", 3.0, **where),
                target("typed sync client p99 over p50", row["p99_over_p50"], "<=", 3.0, **where),
                target(
                    "numpy Generator.choice(p) ms over typed client p50",
                    row.get("choice_over_client_p50", float("nan")),
                    ">=",
                    4.0,
                    **where,
                ),
                target(
                    "numpy cumsum+searchsorted ms over typed client p50",
                    row.get("cumsum_over_client_p50", float("nan")),
                    ">=",
                    2.0,
                    **where,
                ),
            ],
        }
    )


def batches_bench(args) -> None:
    for n in args.problems:
        baselines = numpy_baselines(n, args.batch_sizes, args.baseline_repeats)
        with tempfile.TemporaryDirectory() as tmp:
            db_url = f"sqlite:///{tmp}/bench.db"
            migrate.upgrade(db_url)
            seed_run(db_url, n)
            with serve(db_url, Path(tmp), extra_env={"PACED_SYNC_INTERVAL_S": "0.5"}) as base:
                measured = batch_rows(base, n, args.batch_sizes, args, baselines)
        if n == max(args.problems):
            client_targets(n, measured)


# ---- the client's own parsing and validation, old way vs new, same process --------------------


class _OldItem(BaseModel):
    """BatchItem as the client had it before issue 17: a pydantic model per item."""

    model_config = ConfigDict(extra="allow")
    problem_id: str
    prompt: str
    answer: str | None = None
    pass_rate: float | None = None
    weight: float
    loss_weight: float
    source: str | None = None


class _OldBatch(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[_OldItem]
    available: int
    sources: dict[str, int] | None = None


def parse_rows(batch_sizes: list[int], repeats: int) -> None:
    """Client CPU to turn a batch response into typed items, and to check an outcome list:
    immune to the neighbours' load that blurs the latencies (one process, same minute)."""
    for b in batch_sizes:
        columns = {
            "problem_id": [f"p{i}" for i in range(b)],
            "prompt": [f"What is {i} + {i}?" for i in range(b)],
            "answer": [str(2 * i) for i in range(b)],
            "pass_rate": [0.375] * b,
            "weight": [0.234375] * b,
            "loss_weight": [1.0] * b,
        }
        items = [dict(zip(columns, v, strict=True)) for v in zip(*columns.values(), strict=True)]
        rows = orjson.dumps({"items": items, "available": b})
        cols = orjson.dumps({"columns": columns, "available": b})
        emit(
            {
                "config": "parse",
                "batch_size": b,
                "row_bytes": len(rows),
                "column_bytes": len(cols),
                "old_json_loads_pydantic_ms": median_ms(
                    lambda rows=rows: _OldBatch.model_validate(json.loads(rows)), repeats
                ),
                "new_rows_ms": median_ms(
                    lambda rows=rows: parse_batch(rows, "application/json"), repeats
                ),
                "new_columns_ms": median_ms(
                    lambda cols=cols: parse_batch(cols, BATCH_COLUMNS), repeats
                ),
            }
        )
    outcomes = [{"problem_id": f"p{i}", "attempts": 8, "successes": i % 9} for i in range(10_000)]

    def old_outcomes():
        checked = [models.Outcome.model_validate(o) for o in outcomes]
        return json.dumps({"outcomes": [o.model_dump(mode="json") for o in checked]})

    emit(
        {
            "config": "parse",
            "outcomes": len(outcomes),
            "old_model_per_outcome_json_dumps_ms": median_ms(old_outcomes, max(3, repeats // 4)),
            "new_one_pass_orjson_ms": median_ms(
                lambda: orjson.dumps({"outcomes": _checked_outcomes(outcomes)}),
                max(3, repeats // 4),
            ),
        }
    )


# ---- ingest through the client ----------------------------------------------------------------


INGEST_TARGETS = {"sqlite": 100_000, "postgres": 60_000}  # outcomes/s (issue 25)


def ingest_rows(backend: str, url_factory, args) -> None:
    rng = np.random.default_rng(0)
    n = args.ingest_problems
    with (
        tempfile.TemporaryDirectory() as tmp,
        url_factory(tmp) as db_url,
        serve(db_url, Path(tmp)) as base,
        PacedClient(base, timeout=120) as paced,
    ):
        paced.create_dataset("bench")
        paced.upsert_problems(
            "bench", [{"id": f"p{i}", "prompt": f"problem {i}"} for i in range(n)]
        )
        paced.create_run(RUN, "bench")
        paced.post_outcomes(RUN, [{"problem_id": "p0", "attempts": 1, "successes": 1}])
        paced.batch(RUN, 1, seed=0, mode="uniform")  # the index is built before the clock
        for chunk in args.chunks:
            posts = max(3, args.ingest_outcomes // chunk)
            steps = []
            for step in range(posts):
                ids = rng.integers(0, n, chunk).tolist()
                k = rng.integers(0, 9, chunk).tolist()
                steps.append(
                    [
                        {"problem_id": f"p{i}", "attempts": 8, "successes": s, "step": step}
                        for i, s in zip(ids, k, strict=True)
                    ]
                )
            times = []
            client_cpu0, server_cpu0 = time.process_time(), cpu_seconds(PIDS[base])
            start = time.perf_counter()
            for step, outcomes in enumerate(steps):
                t0 = time.perf_counter()
                paced.post_outcomes(RUN, outcomes, idempotency_key=f"c{chunk}-{step}")
                times.append(time.perf_counter() - t0)
            total = time.perf_counter() - start
            client_cpu = time.process_time() - client_cpu0
            server_cpu = cpu_seconds(PIDS[base]) - server_cpu0
            rate = round(chunk * posts / total)
            targets = (
                [target(f"ingest outcomes/s, 10,000 per post, {backend}", rate, ">=",
                        INGEST_TARGETS[backend])]
                if chunk == 10_000 and backend in INGEST_TARGETS
                else []
            )  # fmt: skip
            emit(
                {
                    "config": "ingest",
                    "backend": backend,
                    "problems": n,
                    "outcomes_per_post": chunk,
                    "posts": posts,
                    "outcomes_per_s": rate,
                    "p50_post_ms": pct(times, 50),
                    "p99_post_ms": pct(times, 99),
                    # Outcomes per CPU second of each side: steadier than wall time here.
                    "client_cpu_ms_per_post": round(client_cpu / posts * 1000, 2),
                    "server_cpu_ms_per_post": round(server_cpu / posts * 1000, 2),
                    "outcomes_per_server_cpu_s": round(chunk * posts / server_cpu),
                    **({"targets": targets} if targets else {}),
                }
            )


def ingest_bench(args) -> None:
    factories = {
        "sqlite": lambda tmp: contextlib.nullcontext(f"sqlite:///{tmp}/bench.db"),
        "postgres": lambda tmp: pg_database(),
    }
    for backend in args.backends:
        ingest_rows(backend, factories[backend], args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="N=1e4 and 1e5 only, fewer draws")
    parser.add_argument("--problems", default=None, help="comma-separated N")
    parser.add_argument("--batch-sizes", default=None)
    parser.add_argument("--backends", default="sqlite,postgres", help="for ingest")
    parser.add_argument("--skip", default="", help="parse, batches and/or ingest")
    parser.add_argument("--label", default="", help="stored in every row (before/after)")
    parser.add_argument("--code", default=None, help="serve this checkout's code (a pair)")
    args = parser.parse_args()
    quick = args.quick
    args.problems = [
        int(float(x)) for x in (args.problems or ("1e4,1e5" if quick else "1e4,1e5,1e6")).split(",")
    ]
    args.batch_sizes = [int(x) for x in (args.batch_sizes or "64,512,4096").split(",")]
    args.backends = args.backends.split(",")
    args.requests = 30 if quick else 100
    args.cold_requests = 8 if quick else 30
    args.baseline_repeats = 5 if quick else 12
    args.ingest_problems = 20_000 if quick else 100_000
    args.ingest_outcomes = 20_000 if quick else 200_000
    args.chunks = [512, 10_000] if quick else [512, 4096, 10_000]
    LABEL["label"] = args.label
    emit(
        {
            "config": "meta",
            "commit": commit(),
            "quick": quick,
            "code": served_code(),
        }
    )
    skip = set(args.skip.split(","))
    if "parse" not in skip:
        parse_rows(args.batch_sizes, 20 if quick else 50)
    if "batches" not in skip:
        batches_bench(args)
    if "ingest" not in skip:
        ingest_bench(args)


if __name__ == "__main__":
    main()
