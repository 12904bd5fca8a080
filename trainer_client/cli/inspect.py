"""Data commands of ``paced``: ``import`` problems from JSONL and ``export`` a run's weights
(CSV, JSONL, parquet) — over HTTP through the typed client, the same against a local or a
remote service (run commands are in cli/runs.py)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from trainer_client.cli.common import client as service_client
from trainer_client.cli.common import fail, guarded, service_flags
from trainer_client.limits import DEFAULT_LIMITS

IMPORT_BATCH = DEFAULT_LIMITS.max_items_per_request
EXPORT_PAGE = 10_000
# prior_*: the problem's prior pseudo-counts (paced priors), which pass_rate and weight include.
EXPORT_FIELDS = (
    "problem_id",
    "attempts",
    "successes",
    "pass_rate",
    "weight",
    "prior_attempts",
    "prior_successes",
)


def register(subparsers: argparse._SubParsersAction, lazy: Callable) -> None:
    common = service_flags()
    here = __name__

    imp = subparsers.add_parser(
        "import",
        parents=[common],
        help="upsert problems from a JSONL file (one {id, prompt, answer?, metadata?} a line)",
    )
    imp.add_argument("dataset", help="created if it does not exist")
    imp.add_argument("file", help="JSONL file, or - for stdin")
    imp.add_argument("--batch-size", type=int, default=IMPORT_BATCH)
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=lazy(here, "import_command"))

    exp = subparsers.add_parser(
        "export", parents=[common], help="every problem's counts, pass rate and weight"
    )
    exp.add_argument("run")
    exp.add_argument("--format", choices=("csv", "jsonl", "parquet"), default="csv")
    exp.add_argument("-o", "--output", help="file to write (default stdout; parquet needs one)")
    exp.set_defaults(func=lazy(here, "export_command"))


# ---- import -----------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (redrawn at most 10 times a second)."""

    def __init__(self, total: int | None, stream: IO[str], enabled: bool = True) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled
        self.done = 0
        self.start = self._drawn = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.1:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self.start, 1e-9)
        if self.total:
            filled = round(30 * min(self.done / self.total, 1.0))
            head = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}"
        else:
            head = str(self.done)
        self.stream.write(f"\r{head} problems  {rate:,.0f}/s")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


def read_problems(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict) or "id" not in item or "prompt" not in item:
            raise ValueError(f"line {number}: expected an object with 'id' and 'prompt'")
        yield item


def _count_lines(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


@guarded
def import_command(args: argparse.Namespace) -> int:
    from trainer_client.errors import NotFound

    if not 1 <= args.batch_size <= IMPORT_BATCH:
        return fail(f"--batch-size must be in 1..{IMPORT_BATCH}")
    stdin = args.file == "-"
    total = None if stdin else _count_lines(args.file)
    source = sys.stdin if stdin else open(args.file, encoding="utf-8")  # noqa: SIM115
    progress = Progress(total, sys.stderr, enabled=not args.quiet)
    inserted = updated = 0
    try:
        with source, service_client(args) as client:
            try:
                client.get_dataset(args.dataset)
            except NotFound:
                client.create_dataset(args.dataset)
            batch: list[dict[str, Any]] = []
            for item in read_problems(source):
                batch.append(item)
                if len(batch) == args.batch_size:
                    result = client.upsert_problems(args.dataset, batch)
                    inserted, updated = inserted + result.inserted, updated + result.updated
                    progress.advance(len(batch))
                    batch = []
            if batch:
                result = client.upsert_problems(args.dataset, batch)
                inserted, updated = inserted + result.inserted, updated + result.updated
                progress.advance(len(batch))
    except ValueError as exc:
        return fail(f"{args.file}: {exc} ({progress.done} problems were imported before it)")
    finally:
        progress.finish()
    elapsed = time.monotonic() - progress.start
    print(f"{args.dataset}: {inserted} inserted, {updated} updated in {elapsed:.1f} s")
    return 0


# ---- export -----------------------------------------------------------------------------


def _weight_rows(client, run: str) -> Iterator[dict[str, Any]]:
    for item in client.iter_weights(run, limit=EXPORT_PAGE):
        yield {name: getattr(item, name) for name in EXPORT_FIELDS}


def _write_parquet(rows: Iterator[dict[str, Any]], path: str) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("problem_id", pa.string()),
            ("attempts", pa.int64()),
            ("successes", pa.int64()),
            ("pass_rate", pa.float64()),
            ("weight", pa.float64()),
            ("prior_attempts", pa.float64()),
            ("prior_successes", pa.float64()),
        ]
    )
    table = pa.Table.from_pylist(list(rows), schema=schema)
    pq.write_table(table, path)
    return table.num_rows


def _write_text(rows: Iterator[dict[str, Any]], fmt: str, out: IO[str]) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for count, row in enumerate(rows, start=1):  # noqa: B007
            writer.writerow(row)
    else:
        for count, row in enumerate(rows, start=1):  # noqa: B007
            out.write(json.dumps(row) + "\n")
    return count


@guarded
def export_command(args: argparse.Namespace) -> int:
    if args.format == "parquet" and not args.output:
        return fail("--format parquet needs --output FILE")
    with service_client(args) as client:
        client.get_run(args.run)  # a missing run fails here, before any file is created
        rows = _weight_rows(client, args.run)
        if args.format == "parquet":
            count = _write_parquet(rows, args.output)
        elif args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as out:
                count = _write_text(rows, args.format, out)
        else:
            count = _write_text(rows, args.format, sys.stdout)
    print(f"exported {count} problems of run {args.run}", file=sys.stderr)
    return 0
