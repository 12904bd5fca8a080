"""A profile of the warm batch path as Markdown, from what bench/profile_batch.py printed
(its JSON row, run with --py-spy --perf) and py-spy's raw stacks (--py-spy-raw): where each
millisecond of a request's server CPU goes, by part of the path, by function, and by shared
object on the CPU.

Run: python bench/profile_report.py ROW.json RAW.txt "title" > docs/benchmarks/profile-X.md
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

from bench.profile_batch import part_of  # noqa: E402


def leaves(raw: Path) -> tuple[int, collections.Counter]:
    """Samples by (part, innermost function, its file)."""
    counts: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not (stack and count.isdigit()):
            continue
        frames = stack.split(";")
        function, _, where = frames[-1].partition(" (")
        path = where.rsplit(":", 1)[0]
        counts[(part_of(frames), function, path)] += int(count)
        total += int(count)
    return total, counts


def main() -> None:
    row = json.loads(Path(sys.argv[1]).read_text().splitlines()[-1])
    raw = Path(sys.argv[2])
    title = sys.argv[3]
    cpu = row["profiled_server_cpu_ms"]
    out = [
        f"# {title}",
        "",
        f"`bench/profile_batch.py` at code `{row['code']}` ({row.get('label') or 'no label'}): "
        f"a real `paced serve` (1 worker, SQLite, default settings, log level "
        f"{row['log_level']}), N = {row['problems']:,} problems, warm {row['batch_size']}-item "
        f"batches in the {row['format']} format ({row['response_bytes']:,} bytes), a fresh "
        "seed per request, one keep-alive client. Shared 2-core VM, noisy (other sessions' "
        "jobs ran beside it): the same-run before/after pair is in docs/benchmarks.md.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| server CPU per request (timed loop, {row['requests']} requests) | "
        f"{row['server_cpu_ms']} ms |",
        f"| p50 / p99 latency | {row['p50_ms']} / {row['p99_ms']} ms |",
        f"| framework floor (bare uvicorn + FastAPI, same bytes): server CPU / p50 | "
        f"{row['floor_server_cpu_ms']} / {row['floor_p50_ms']} ms |",
        f"| server CPU over the floor | {row['server_cpu_over_floor']}x |",
        f"| server CPU per request while py-spy sampled | {cpu} ms |",
        "",
        "## Where each millisecond goes (py-spy, by part of the path)",
        "",
        "py-spy sampled the server at 1 kHz while one client drew (server and client pinned "
        "to different cores so that the client it wakes does not preempt the server; only "
        "the samples of the thread holding the GIL: uvloop's epoll wait looks busy to py-spy "
        "otherwise). Each sample goes to the innermost frame that names a part "
        "(bench/profile_batch.py PARTS); ms = share of samples x server CPU per request while "
        "sampled. numpy work done without the GIL and kernel time outside it are not in "
        "these samples (the perf split below has them).",
        "",
        "| part | share | ms per request |",
        "|---|---|---|",
    ]
    for part, share in row["parts_share"].items():
        out.append(f"| {part} | {share:.1%} | {row['parts_ms'][part]:.3f} |")
    total, counts = leaves(raw)
    out += [
        "",
        "### By function (innermost frame), top 30",
        "",
        "| part | function | file | share | ms per request |",
        "|---|---|---|---|---|",
    ]
    for (part, function, path), count in counts.most_common(30):
        share = count / total
        out.append(f"| {part} | `{function}` | {path} | {share:.1%} | {share * cpu:.3f} |")
    if "perf_ms" in row:
        out += [
            "",
            "## On the CPU, by shared object (perf, cpu-clock)",
            "",
            "perf record -e cpu-clock over another timed loop: time on a core only, the "
            f"kernel included (server CPU per request then: {row['perf_server_cpu_ms']} ms).",
            "",
            "| shared object | ms per request |",
            "|---|---|",
        ]
        out += [f"| {name.strip()} | {ms:.3f} |" for name, ms in row["perf_ms"].items()]
        out += ["", "Top symbols:", "", "| share | object | symbol |", "|---|---|---|"]
        out += [f"| {s:.1%} | {dso} | `{sym}` |" for s, dso, sym in row["perf_top"][:20]]
    print("\n".join(out))


if __name__ == "__main__":
    main()
