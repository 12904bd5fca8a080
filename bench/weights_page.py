"""How long the client's iter_weights takes to export every weight, by page size, on SQLite
and PostgreSQL: the measurement behind iter_weights' default page (docs/client.md).

Prints one JSON object: per backend and page size the median seconds of a full export
(`--repeats` runs), and each size's ratio to the fastest of its backend in the same run.
Run: python bench/weights_page.py [--problems 50000] [--repeats 3] [--backends sqlite,postgres]
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench._server import pg_database, serve  # noqa: E402
from trainer_client.client import PacedClient  # noqa: E402

PAGE_SIZES = (1_000, 2_500, 5_000, 10_000)


def seed(paced: PacedClient, n: int) -> None:
    paced.create_dataset("weights")
    paced.upsert_problems("weights", [{"id": f"p{i}", "prompt": f"{i}+1="} for i in range(n)])
    paced.create_run("export", "weights")
    paced.post_outcomes(
        "export", [{"problem_id": f"p{i}", "attempts": 8, "successes": i % 9} for i in range(n)]
    )


def export_seconds(paced: PacedClient, limit: int, expected: int) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in paced.iter_weights("export", limit=limit))
    assert count == expected, (count, expected)
    return time.perf_counter() - start


def measure(database_url: str | None, n: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/paced.db"
        with serve(url, Path(tmp)) as base, PacedClient(base, timeout=300) as paced:
            seed(paced, n)
            export_seconds(paced, PAGE_SIZES[-1], n)  # warm: index and caches built
            times: dict[int, list[float]] = {size: [] for size in PAGE_SIZES}
            for _ in range(repeats):  # interleaved, so drift hits every size alike
                for size in PAGE_SIZES:
                    times[size].append(export_seconds(paced, size, n))
    return {str(size): statistics.median(t) for size, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    report: dict[str, object] = {"problems": args.problems, "repeats": args.repeats}
    for backend in args.backends.split(","):
        with pg_database() if backend == "postgres" else contextlib.nullcontext() as db:
            medians = measure(db, args.problems, args.repeats)
        fastest = min(medians.values())
        report[backend] = {
            "median_s": medians,
            "ratio_to_fastest": {k: round(v / fastest, 2) for k, v in medians.items()},
            "fastest_page": min(medians, key=lambda k: medians[k]),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
