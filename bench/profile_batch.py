"""Where a warm batch request's server CPU goes: a real `paced serve` at N problems, one
keep-alive client drawing B-item batches (a fresh seed each), the server's own CPU time per
request (/proc utime + stime over the timed requests), and — with --py-spy — a sampling
profile of the server during a second timed loop, each sample put in one part of the path
(middleware, request parsing, the route, the Sampler, prompt lookups, response building,
logging, the index draw, the database path, framework + HTTP). The framework floor (a bare
uvicorn + FastAPI app returning the same bytes, bench/_floor.py) is measured in the same run.

Run: python bench/profile_batch.py [--problems 1000000] [--batch-size 512]
        [--format columns|rows] [--py-spy] [--code DIR] [--label before]
--code DIR serves another checkout's `service` (a same-run before/after pair):
    python bench/profile_batch.py --code /work/baseline --label before
The service runs with its defaults (log level info: the access log is on where the
service's default has it on) unless --log-level says otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import bench  # noqa: E402,F401  (this checkout's bench package, whatever --code says)
from bench._code import use_code_from_argv  # noqa: E402

use_code_from_argv()  # before anything imports `service`

import argparse  # noqa: E402
import asyncio  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from bench._floor import BARE_PATH, MODEL_PATH, floor_server  # noqa: E402
from bench._loadgen import Connection  # noqa: E402
from bench._seed import seed_run  # noqa: E402
from bench._server import PIDS, cpu_seconds, serve  # noqa: E402
from bench._targets import target  # noqa: E402
from service import migrate  # noqa: E402

COLUMNS = "application/vnd.paced.batch-columns+json"
MACHINE = f"{platform.machine()} cores={os.cpu_count()}"
SEED_CACHE = Path(os.environ.get("PACED_BENCH_CACHE", tempfile.gettempdir())) / "paced-bench"

# Parts of the path, by the innermost frame of a sample that names one (file fragment,
# function or None for any): first match from the leaf up decides.
PARTS: list[tuple[str, str, str | None]] = [
    ("logging", "logging/__init__.py", None),
    ("logging", "uvicorn/logging.py", None),
    ("socket write", "uvicorn/protocols/http/httptools_impl.py", "RequestResponseCycle.send"),
    ("event loop (uvloop: polling, socket reads, callbacks)", "asyncio/runners.py", None),
    ("framework + HTTP", "uvicorn/", None),
    ("framework + HTTP", "asyncio/", None),
    ("framework + HTTP", "fastapi/routing.py", "_IncludedRouter"),
    ("framework + HTTP", "fastapi/routing.py", "_EffectiveRouteContext"),
    ("framework + HTTP", "fastapi/routing.py", "APIRoute.matches"),
    ("framework + HTTP", "fastapi/routing.py", "APIRouter"),
    ("framework + HTTP", "starlette/routing.py", None),
    ("database path", "threading.py", None),  # the threadpool hop
    ("database path", "sqlalchemy/", None),
    ("database path", "service/store/", None),
    ("database path", "anyio/", None),
    ("database path", "starlette/concurrency.py", None),
    ("database path", "service/domain/prompt_cache.py", "texts"),
    ("database path", "service/domain/sampler.py", "_read_texts"),
    ("database path", "service/domain/sampler.py", "_fill"),
    ("database path", "service/domain/sampler.py", "_with_database"),
    ("prompt lookups", "service/domain/prompt_cache.py", None),
    ("prompt lookups", "service/domain/text_columns.py", "TextColumns.locate"),
    ("prompt lookups", "service/domain/text_columns.py", "_matches"),
    ("prompt lookups", "service/domain/text_columns.py", "_search"),
    ("response building", "service/domain/text_columns.py", None),
    ("response building", "service/domain/batch_body.py", None),
    ("response building", "service/api/fast_json.py", None),
    ("response building", "starlette/responses.py", None),
    ("response building", "service/domain/curriculum.py", "batch_"),
    ("response building", "service/domain/curriculum.py", "_batch_items"),
    ("response building", "service/domain/sampler.py", "body"),
    ("index draw", "service/curriculum/", None),
    ("index draw", "service/domain/curriculum.py", "draw_or_conflict"),
    ("index draw", "service/domain/curriculum.py", "rng_for"),
    ("index draw", "numpy/random", None),
    ("metrics", "prometheus_client/", None),
    ("middleware", "service/metrics.py", None),
    ("middleware", "service/api/body_limit.py", None),
    ("middleware", "service/domain/activity.py", None),
    ("middleware", "starlette/middleware/", None),
    ("request parsing", "fastapi/dependencies/", None),
    ("request parsing", "fastapi/_compat", None),
    ("request parsing", "pydantic", None),
    ("request parsing", "service/api/security.py", None),
    ("request parsing", "service/api/deps.py", None),
    ("request parsing", "starlette/requests.py", None),
    ("request parsing", "fastapi/routing.py", "get_request_handler"),
    ("request parsing", "fastapi/routing.py", "app"),
    ("the Sampler", "service/domain/sampler.py", None),
    ("the route", "service/api/runs.py", None),
    ("the route", "service/api/batch_fast_path.py", None),
    ("the route", "service/api/limits.py", None),
    ("the route", "service/domain/claims.py", None),
]


def part_of(stack: list[str]) -> str:
    """stack: py-spy frames 'function (file:line)', root first."""
    for frame in reversed(stack):
        function, _, where = frame.partition(" (")
        for part, fragment, name in PARTS:
            if fragment in where and (name is None or function.startswith(name)):
                return part
    return "framework + HTTP"


def seeded_database(n: int, tmp: Path) -> str:
    """A copy of a seeded SQLite database of n problems (seeded once per schema and n: the
    schema of the code served, which --code may have made another checkout's)."""
    import service as service_package

    code = Path(service_package.__file__).resolve().parents[1]
    heads = "-".join(sorted(p.stem[:12] for p in (code / "migrations/versions").glob("*.py")))
    key = hashlib.sha256(heads.encode()).hexdigest()[:10]  # str hash() varies per process
    cached = SEED_CACHE / f"seed-{n}-{key}.db"
    if not cached.exists():
        SEED_CACHE.mkdir(parents=True, exist_ok=True)
        building = cached.with_suffix(".building")
        building.unlink(missing_ok=True)
        url = f"sqlite:///{building}"
        migrate.upgrade(url)
        seed_run(url, n)
        building.rename(cached)
    target = tmp / "bench.db"
    shutil.copyfile(cached, target)
    return f"sqlite:///{target}"


def request_head(size: int, seed: int, fmt: str) -> tuple[bytes, dict[str, str]]:
    headers = {"accept": COLUMNS} if fmt == "columns" else {}
    return json.dumps({"size": size, "seed": seed}).encode(), headers


async def timed_loop(base: str, path: str, size: int, first_seed: int, requests: int, fmt: str):
    conn = await Connection.open(base)
    times = []
    try:
        for i in range(requests):
            body, headers = request_head(size, first_seed + i, fmt)
            t0 = time.perf_counter()
            status, _ = await conn.post(path, body, headers)
            times.append(time.perf_counter() - t0)
            assert status == 200, status
    finally:
        await conn.close()
    return times


async def one_body(base: str, path: str, size: int, fmt: str) -> bytes:
    conn = await Connection.open(base)
    try:
        body, headers = request_head(size, 7, fmt)
        status, payload = await conn.post(path, body, headers)
        assert status == 200, status
        return payload
    finally:
        await conn.close()


def measure(base: str, pid: int, path: str, size: int, seed: int, requests: int, fmt: str):
    cpu0 = cpu_seconds(pid)
    times = asyncio.run(timed_loop(base, path, size, seed, requests, fmt))
    cpu = (cpu_seconds(pid) - cpu0) / requests
    ms = np.array(times) * 1000
    return {
        "server_cpu_ms": round(cpu * 1000, 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def settle(base: str, timeout_s: float = 300) -> None:
    """Wait until the prompt cache stops growing by itself (a background prefill), so no
    measurement shares the CPU with it."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        held = [
            line.split()[-1]
            for line in httpx.get(base + "/metrics").text.splitlines()
            if line.startswith('paced_prompt_cache{what="bytes"}')
        ]
        if held == last:
            return
        last = held
        time.sleep(2.0)


def warm(base: str, pid: int, size: int, budget_s: float) -> None:
    """Draw until a round of draws costs no more server CPU than the one before (the prompt
    cache stopped filling), within a time budget."""
    deadline, seed, last = time.monotonic() + budget_s, 10**8, None
    while time.monotonic() < deadline:
        row = measure(base, pid, "/v1/runs/run/batches", 4096, seed, 20, "rows")
        seed += 20
        if last is not None and row["server_cpu_ms"] >= 0.97 * last:
            break
        last = row["server_cpu_ms"]
    asyncio.run(timed_loop(base, "/v1/runs/run/batches", size, seed, 200, "rows"))


def py_spy_profile(pid: int, run_load, keep: Path | None, gil: bool) -> dict:
    """Sample the server with py-spy while run_load() runs, each sample put in one part of
    the path. py-spy leaves out threads the OS reports idle; `gil` keeps only samples of the
    thread holding the GIL (this misses numpy work done without it). Either counts a server
    thread preempted by the client it just woke (same core) as busy, hence --pin. Returns
    each part's share of the samples and the samples per second of the load."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    rate = 1000
    with tempfile.TemporaryDirectory() as tmp:
        out = keep or Path(tmp) / "profile.txt"
        proc = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
             "--nonblocking", "--output", str(out), *(["--gil"] if gil else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)  # py-spy attaches
        t0 = time.perf_counter()
        run_load()
        elapsed = time.perf_counter() - t0
        time.sleep(0.2)
        proc.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        proc.wait(60)
        counts: collections.Counter[str] = collections.Counter()
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():  # (a frame name with a newline splits a line)
                counts[part_of(stack.split(";"))] += int(count)
    total = sum(counts.values()) or 1
    return {
        "shares": {part: round(c / total, 4) for part, c in counts.most_common()},
        "samples": total,
        "samples_per_s_of_load": round(total / elapsed, 1),
        "rate": rate,
    }


DSO_PARTS = [  # perf's shared objects, by name fragment, into parts of the path
    ("kernel (TCP send/receive over loopback, epoll, page faults)", "kernel"),
    ("numpy", "_multiarray_umath"),
    ("numpy", "numpy"),
    ("orjson", "orjson"),
    ("uvloop / libuv", "loop.cpython"),
    ("httptools parser", "httptools"),
    ("httptools parser", "parser.cpython"),
    ("pydantic-core", "pydantic_core"),
    ("C library (malloc, memcpy)", "libc"),
    ("C library (malloc, memcpy)", "libm"),
    ("the Python interpreter", "python"),
]


def perf_profile(pid: int, run_load, keep: Path | None) -> dict:
    """On-CPU samples of the server (perf, cpu-clock: time on a core only, kernel included)
    while run_load() runs: each shared object's share, and the top symbols."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "perf.data"
        proc = subprocess.Popen(
            ["perf", "record", "-e", "cpu-clock", "-F", "1999", "-p", str(pid), "-o", str(data)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)
        run_load()
        proc.send_signal(2)
        proc.wait(60)

        def report(*sort: str) -> str:
            command = ["perf", "report", "-i", str(data), "--stdio", "--no-children", *sort]
            return subprocess.run(command, capture_output=True, text=True).stdout

        by_dso = report("--sort", "dso")
        by_symbol = report("--sort", "dso,sym", "--percent-limit", "0.5")
    if keep:
        keep.write_text(by_dso + by_symbol)
    parts: collections.Counter[str] = collections.Counter()
    for fields in _report_lines(by_dso, 2):
        name = next((part for part, fragment in DSO_PARTS if fragment in fields[1]), fields[1])
        parts[name] += float(fields[0][:-1]) / 100
    symbols = [
        (round(float(f[0][:-1]) / 100, 4), f[1], f[3].strip()[:80])
        for f in _report_lines(by_symbol, 4)
    ]
    return {"dso_shares": {k: round(v, 4) for k, v in parts.most_common()}, "top": symbols[:25]}


def _report_lines(report: str, n_fields: int) -> list[list[str]]:
    rows = []
    for line in report.splitlines():
        fields = [field.strip() for field in line.split(None, n_fields - 1)]
        if len(fields) == n_fields and fields[0].endswith("%") and not line.startswith("#"):
            rows.append(fields)
    return rows


@contextlib.contextmanager
def pinned(server_pid: int, enabled: bool):
    """Server (all its threads) on core 0 and this process on core 1 while profiling; then
    both back on every core. Only around the profilers: a pinned server that waits for each
    request loses its core to any neighbour meanwhile, and its latency shows it."""
    if not enabled:
        yield
        return
    cores = os.sched_getaffinity(0)
    tasks = [int(task.name) for task in Path(f"/proc/{server_pid}/task").iterdir()]
    for task in tasks:
        os.sched_setaffinity(task, {0})
    os.sched_setaffinity(0, {1})
    try:
        yield
    finally:
        for task in [int(task.name) for task in Path(f"/proc/{server_pid}/task").iterdir()]:
            os.sched_setaffinity(task, cores)
        os.sched_setaffinity(0, cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--format", choices=("columns", "rows"), default="columns")
    parser.add_argument("--py-spy", action="store_true")
    parser.add_argument("--py-spy-raw", default=None, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--profile-requests", type=int, default=4000, help="under py-spy")
    parser.add_argument(
        "--py-spy-gil",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="only the GIL holder's samples (uvloop's epoll wait looks busy to py-spy otherwise)",
    )
    parser.add_argument("--perf", action="store_true", help="also an on-CPU perf profile")
    parser.add_argument("--perf-report", default=None, help="keep perf's report here")
    parser.add_argument("--code", default=None, help="serve this checkout's service")
    parser.add_argument("--label", default="")
    parser.add_argument("--log-level", default=None, help="PACED_LOG_LEVEL (default: service's)")
    parser.add_argument("--warm-budget-s", type=float, default=120)
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=(os.cpu_count() or 1) >= 2,
        help="while profiling, server on core 0 and this client on core 1 (default with 2+ "
        "cores): the client woken by a response would otherwise preempt the server on its "
        "core, and a sampling profiler would charge that wait to the server's socket write",
    )
    args = parser.parse_args()
    import service as service_package

    env = {"PACED_SYNC_INTERVAL_S": "0.5"}
    if args.log_level:
        env["PACED_LOG_LEVEL"] = args.log_level
    else:
        env["PACED_LOG_LEVEL"] = os.environ.get("PACED_LOG_LEVEL", "info")
    path = "/v1/runs/run/batches"
    with tempfile.TemporaryDirectory() as tmp:
        db_url = seeded_database(args.problems, Path(tmp))
        with serve(db_url, Path(tmp), extra_env=env) as base:
            pid = PIDS[base]
            asyncio.run(timed_loop(base, path, 1, 0, 1, args.format))  # builds the index
            settle(base)
            warm(base, pid, args.batch_size, args.warm_budget_s)
            payload = asyncio.run(one_body(base, path, args.batch_size, args.format))
            row = measure(base, pid, path, args.batch_size, 1, args.requests, args.format)
            profile, profiled = None, {}
            if args.py_spy:

                def load() -> None:
                    profiled.update(
                        measure(base, pid, path, args.batch_size, 10**6, args.profile_requests,
                                args.format)
                    )  # fmt: skip

                keep = Path(args.py_spy_raw) if args.py_spy_raw else None
                with pinned(pid, args.pin):
                    profile = py_spy_profile(pid, load, keep, args.py_spy_gil)
            perf, perfed = None, {}
            if args.perf:

                def perf_load() -> None:
                    perfed.update(
                        measure(base, pid, path, args.batch_size, 2 * 10**6,
                                args.profile_requests, args.format)
                    )  # fmt: skip

                keep = Path(args.perf_report) if args.perf_report else None
                with pinned(pid, args.pin):
                    perf = perf_profile(pid, perf_load, keep)
        media = COLUMNS if args.format == "columns" else "application/json"
        with floor_server(payload, media) as (floor_base, floor_pid):
            asyncio.run(timed_loop(floor_base, BARE_PATH, 1, 0, 200, args.format))
            floor = measure(floor_base, floor_pid, BARE_PATH, 1, 1, args.requests, args.format)
            floor_model = measure(
                floor_base, floor_pid, MODEL_PATH, 1, 1, args.requests, args.format
            )
    out = {
        "bench": "profile_batch",
        "label": args.label,
        "code": str(Path(service_package.__file__).parents[1]),
        "problems": args.problems,
        "batch_size": args.batch_size,
        "format": args.format,
        "response_bytes": len(payload),
        "requests": args.requests,
        "log_level": env["PACED_LOG_LEVEL"],
        "profiled_pinned": args.pin,
        **row,
        "floor_server_cpu_ms": floor["server_cpu_ms"],
        "floor_p50_ms": floor["p50_ms"],
        "floor_model_server_cpu_ms": floor_model["server_cpu_ms"],
        "server_cpu_over_floor": round(row["server_cpu_ms"] / floor["server_cpu_ms"], 2),
        "machine": MACHINE,
    }
    if profile is not None:
        # Each part's ms per request: its share of the samples times the server CPU per
        # request measured over the profiled requests (py-spy slows the server a little).
        cpu = profiled["server_cpu_ms"]
        out["profiled_server_cpu_ms"] = cpu
        out["profile_samples"] = profile["samples"]
        # Sampled ms per request: what the samples say the server was busy for.
        out["profile_sampled_ms"] = round(
            profile["samples"] / profile["rate"] * 1000 / args.profile_requests, 3
        )
        out["parts_share"] = profile["shares"]
        out["parts_ms"] = {k: round(v * cpu, 3) for k, v in profile["shares"].items()}
    if perf is not None:
        cpu = perfed["server_cpu_ms"]
        out["perf_server_cpu_ms"] = cpu
        out["perf_ms"] = {k: round(v * cpu, 3) for k, v in perf["dso_shares"].items()}
        out["perf_top"] = perf["top"]
    # Issue 25's targets for this row (a warm 512-item columnar request at N = 1e6).
    where = {"problems": args.problems, "batch_size": args.batch_size, "format": args.format}
    out["targets"] = [
        target(f"server CPU ms per warm {args.batch_size}-item request", row["server_cpu_ms"],
               "<=", 1.5, **where),
        target("server CPU over the framework floor", out["server_cpu_over_floor"], "<=", 3.0,
               **where),
    ]  # fmt: skip
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
