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


def _code_from_argv() -> str | None:
    for i, arg in enumerate(sys.argv):
        if arg == "--code" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--code="):
            return arg.split("=", 1)[1]
    return None


CODE = _code_from_argv()
if CODE:  # `service` (and what it spawns) from that checkout; bench helpers from this one
    sys.path.insert(0, str(Path(CODE).resolve()))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import collections  # noqa: E402
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
from service import migrate  # noqa: E402

COLUMNS = "application/vnd.paced.batch-columns+json"
MACHINE = f"{platform.machine()} cores={os.cpu_count()}"
SEED_CACHE = Path(os.environ.get("PACED_BENCH_CACHE", tempfile.gettempdir())) / "paced-bench"

# Parts of the path, by the innermost frame of a sample that names one (file fragment,
# function or None for any): first match from the leaf up decides.
PARTS: list[tuple[str, str, str | None]] = [
    ("logging", "logging/__init__.py", None),
    ("logging", "uvicorn/logging.py", None),
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
    """A copy of a seeded SQLite database of n problems (seeded once per schema and n)."""
    heads = "-".join(sorted(p.stem[:12] for p in (_ROOT / "migrations/versions").glob("*.py")))
    key = abs(hash(heads)) % 10**8
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


def py_spy_profile(pid: int, seconds: float, run_load, keep: Path | None) -> dict[str, float]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        out = keep or Path(tmp) / "profile.txt"
        proc = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--rate", "1000", "--format", "raw",
             "--nonblocking", "--duration", str(int(seconds)), "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.5)
        run_load()
        proc.wait(seconds + 30)
        counts: collections.Counter[str] = collections.Counter()
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():  # (a frame name with a newline splits a line)
                counts[part_of(stack.split(";"))] += int(count)
    total = sum(counts.values()) or 1
    return {part: round(c / total, 4) for part, c in counts.most_common()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--format", choices=("columns", "rows"), default="columns")
    parser.add_argument("--py-spy", action="store_true")
    parser.add_argument("--py-spy-raw", default=None, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--code", default=None, help="serve this checkout's service")
    parser.add_argument("--label", default="")
    parser.add_argument("--log-level", default=None, help="PACED_LOG_LEVEL (default: service's)")
    parser.add_argument("--warm-budget-s", type=float, default=120)
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
            parts = None
            if args.py_spy:
                seconds = max(5.0, args.requests * row["p50_ms"] / 1000 * 1.3)
                parts = py_spy_profile(
                    pid,
                    seconds,
                    lambda: measure(
                        base, pid, path, args.batch_size, 10**6, args.requests, args.format
                    ),
                    Path(args.py_spy_raw) if args.py_spy_raw else None,
                )
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
        **row,
        "floor_server_cpu_ms": floor["server_cpu_ms"],
        "floor_p50_ms": floor["p50_ms"],
        "floor_model_server_cpu_ms": floor_model["server_cpu_ms"],
        "server_cpu_over_floor": round(row["server_cpu_ms"] / floor["server_cpu_ms"], 2),
        "machine": MACHINE,
    }
    if parts is not None:
        out["parts_share"] = parts
        out["parts_ms"] = {k: round(v * row["server_cpu_ms"], 3) for k, v in parts.items()}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
