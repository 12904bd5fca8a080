"""A same-run before/after pair of one benchmark script: its runs against another checkout
(--code, e.g. a worktree of the commit before) and against this one, interleaved
(before, after, after, before, ...: drift on a shared machine hits both alike), then per
row the medians of each side and after / before for every figure, and which figures got
worse by more than --tolerance (lower is better for times and CPU, higher for rates and
ratios to numpy).

Run: python bench/pair.py --code /work/baseline [--after-code /work/after] [--rounds 2]
        [--out pair.jsonl] -- bench/profile_batch.py --requests 1000
(--after-code: a worktree of a commit, so that uncommitted edits in this tree stay out)
     python bench/pair.py --compare RAW.jsonl  (the comparison again, from --out's rows)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The fields that say which configuration a row is (rows of both sides match on them).
KEYS = (
    "bench", "config", "client", "cache", "problems", "batch_size", "backend", "format",
    "outcomes_per_post", "workers", "phase", "cycle", "outcomes", "mode", "N", "B",
)  # fmt: skip
SKIP = {"requests", "posts", "seconds", "warmup_seconds", "response_bytes", "seed_db_s"}


def better_when_higher(name: str) -> bool | None:
    """Which way a figure improves; None: not a performance figure."""
    if name in SKIP:
        return None
    if "_per_s" in name or "per_server_cpu_s" in name or "_over_client_p50" in name:
        return True
    if name.endswith("vs_fastest_numpy") or name.startswith("ratio_"):
        return True
    if "over_floor" in name or "over_p50" in name or "during_over_after" in name:
        return False
    if name.endswith("_ms") or name.endswith("_s") or "cpu" in name:
        return False
    return None


def run(command: list[str], code: str | None, label: str) -> list[dict]:
    extra = ["--code", code] if code else []
    full = [sys.executable, *command, *extra, "--label", label]
    print(f"# {label}: {' '.join(full)}", file=sys.stderr, flush=True)
    out = subprocess.run(full, cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"{label} run failed ({out.returncode})")
    rows = []
    for line in out.stdout.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append({**row, "label": label})
    return rows


def key_of(row: dict) -> tuple:
    return tuple((k, row[k]) for k in KEYS if k in row)


def compare(rows: list[dict], tolerance: float) -> list[dict]:
    by_key: dict[tuple, dict[str, list[dict]]] = {}
    for row in rows:
        by_key.setdefault(key_of(row), {}).setdefault(row["label"], []).append(row)
    out = []
    for key, sides in by_key.items():
        if "before" not in sides or "after" not in sides:
            continue
        figures, worse = {}, []
        for name, value in sides["after"][0].items():
            higher = better_when_higher(name)
            if higher is None or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            before = [r[name] for r in sides["before"] if isinstance(r.get(name), int | float)]
            after = [r[name] for r in sides["after"] if isinstance(r.get(name), int | float)]
            if not before or not after:
                continue
            b, a = statistics.median(before), statistics.median(after)
            ratio = round(a / b, 3) if b else None
            figures[name] = {"before": before, "after": after, "after_over_before": ratio}
            if ratio is not None and (ratio < 1 - tolerance if higher else ratio > 1 + tolerance):
                worse.append(name)
        out.append({"bench": "pair", "row": dict(key), "figures": figures, "worse": worse})
    return out


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--compare"]:  # the comparison again, from the raw rows of a pair
        rows = [json.loads(line) for path in argv[1:] for line in Path(path).open()]
        for result in compare(rows, 0.1):
            print(json.dumps(result), flush=True)
        return
    if "--" not in argv:
        sys.exit(__doc__)
    cut = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--code", required=True, help="the 'before' checkout")
    parser.add_argument(
        "--after-code", default=None, help="the 'after' checkout (default: this one's tree)"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=0.1)
    parser.add_argument("--out", default=None, help="also append every raw row here")
    args = parser.parse_args(argv[:cut])
    command = argv[cut + 1 :]
    rows: list[dict] = []
    for r in range(args.rounds):
        order = [("before", args.code), ("after", args.after_code)]
        for label, code in order if r % 2 == 0 else order[::-1]:
            got = run(command, code, label)
            for row in got:
                row["round"] = r
            rows += got
            if args.out:
                with open(args.out, "a") as file:
                    file.writelines(json.dumps(row) + "\n" for row in got)
    for result in compare(rows, args.tolerance):
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
