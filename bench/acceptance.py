"""Issue 25's acceptance, from the rows `make bench` printed: every target a script put in
its output (a `targets` list: figure, limit, met), gathered into one JSON object with a
met / not met line each, and the targets no row reported listed as not measured.

Run: python bench/acceptance.py bench-results.jsonl [more.jsonl ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# What the issue asks for, by the start of the target names the scripts print.
EXPECTED = {
    "server CPU ms per warm 512-item request": "bench/profile_batch.py",
    "server CPU over the framework floor": "bench/profile_batch.py",
    "typed sync client p50 ms, warm": "bench/client.py",
    "typed sync client p99 over p50": "bench/client.py",
    "numpy Generator.choice(p) ms over typed client p50": "bench/client.py",
    "numpy cumsum+searchsorted ms over typed client p50": "bench/client.py",
    "first draws after first use (cold)": "bench/cold.py",
    "another client's p50 during background work": "bench/cold.py",
    "ingest outcomes/s, 10,000 per post, sqlite": "bench/client.py",
    "ingest outcomes/s, 10,000 per post, postgres": "bench/client.py",
    "32 clients, 2 workers: batch requests/s": "bench/http.py",
    "32 clients, 2 workers: batch p99 ms": "bench/http.py",
}


def gather(paths: list[str]) -> list[dict]:
    found = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            for item in row.get("targets", []) if isinstance(row, dict) else []:
                found.append({"bench": row.get("bench"), **item})
    return found


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    found = gather(sys.argv[1:])
    lines = []
    for item in found:
        verdict = "met" if item["met"] else "not met"
        bound = f"{item['op']} {item['limit']}"
        lines.append(f"{verdict}: {item['target']} = {item['value']} ({bound})")
    missing = [
        f"{name} ({script})"
        for name, script in EXPECTED.items()
        if not any(item["target"].startswith(name) for item in found)
    ]
    summary = {
        "bench": "acceptance",
        "issue": 25,
        "met": sum(item["met"] for item in found),
        "not_met": sum(not item["met"] for item in found),
        "not_measured": missing,
        "targets": found,
        "verdicts": lines,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
