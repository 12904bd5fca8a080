"""Inspection commands of ``paced``: runs, show, import, export — all over HTTP.

They talk to a running service through the typed client (``--url``, ``--token``, or
$PACED_URL / $PACED_TOKEN), the same against a local or a remote service; the client is
imported inside each command, so building the parser stays cheap."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from trainer_client.limits import DEFAULT_LIMITS

DEFAULT_URL = "http://127.0.0.1:8000"
IMPORT_BATCH = DEFAULT_LIMITS.max_items_per_request
EXPORT_PAGE = 10_000
EXPORT_FIELDS = ("problem_id", "attempts", "successes", "pass_rate", "weight")
BAR_WIDTH = 40


def register(subparsers: argparse._SubParsersAction, lazy: Callable) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("PACED_URL", DEFAULT_URL))
    common.add_argument("--token", default=os.environ.get("PACED_TOKEN"), help="admin or run token")
    here = __name__

    runs = subparsers.add_parser("runs", parents=[common], help="list runs as a table")
    runs.set_defaults(func=lazy(here, "runs_command"))

    show = subparsers.add_parser(
        "show", parents=[common], help="a run's settings, zones and pass-rate histogram"
    )
    show.add_argument("run")
    show.add_argument("--bins", type=int, default=10)
    show.set_defaults(func=lazy(here, "show_command"))

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


def _client(args: argparse.Namespace):
    from trainer_client.client import PacedClient

    return PacedClient(args.url, token=args.token)


def _fail(message: str) -> int:
    print(f"paced: {message}", file=sys.stderr)
    return 1


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Service errors become one readable line and exit status 1, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        from trainer_client.errors import PacedError

        try:
            return command(args)
        except PacedError as exc:
            return _fail(str(exc))

    run.__doc__ = command.__doc__
    return run


# ---- runs / show ------------------------------------------------------------------------


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


@_guarded
def runs_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        runs = client.list_runs()
    rows = [
        [
            r.name,
            r.dataset,
            "-" if r.step is None else str(r.step),
            f"{r.kernel.alpha:g},{r.kernel.beta:g}",
            r.estimator.kind,
            r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "",
        ]
        for r in runs
    ]
    print(format_table(["RUN", "DATASET", "STEP", "ALPHA,BETA", "ESTIMATOR", "CREATED"], rows))
    return 0


def bar(value: float, most: float, width: int = BAR_WIDTH) -> str:
    filled = 0 if most <= 0 else round(width * value / most)
    return "█" * filled


@_guarded
def show_command(args: argparse.Namespace) -> int:
    with _client(args) as client:
        run = client.get_run(args.run)
        report = client.difficulty(args.run, bins=args.bins)
    kernel, est = run.kernel, run.estimator
    print(f"run {run.name}  dataset {run.dataset}  step {'-' if run.step is None else run.step}")
    print(
        f"kernel w(p) = p^{kernel.alpha:g} (1-p)^{kernel.beta:g}  estimator {est.kind}"
        f"  half-life {getattr(est, 'half_life_steps', None) or '-'}"
    )
    total = report.problems or 1
    print(f"\n{report.problems} problems")
    zones = report.zones.model_dump()
    for name in ("unseen", "intractable", "frontier", "mastered"):
        count = zones[name]
        print(f"  {name:<12}{count:>10}  {100 * count / total:5.1f}%  {bar(count, total)}")
    print(
        f"mean weight {report.mean_weight:.4f}  effective problems {report.effective_problems:.1f}"
    )
    counts, edges = report.histogram.counts, report.histogram.edges
    print("\npass rate of problems with attempts")
    most = max(counts, default=0)
    for i, count in enumerate(counts):
        close = "]" if i == len(counts) - 1 else ")"
        label = f"[{edges[i]:.2f}, {edges[i + 1]:.2f}{close}"
        print(f"  {label:<14}{count:>10}  {bar(count, most)}")
    return 0


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


@_guarded
def import_command(args: argparse.Namespace) -> int:
    from trainer_client.errors import NotFound

    if not 1 <= args.batch_size <= IMPORT_BATCH:
        return _fail(f"--batch-size must be in 1..{IMPORT_BATCH}")
    stdin = args.file == "-"
    total = None if stdin else _count_lines(args.file)
    source = sys.stdin if stdin else open(args.file, encoding="utf-8")  # noqa: SIM115
    progress = Progress(total, sys.stderr, enabled=not args.quiet)
    inserted = updated = 0
    try:
        with source, _client(args) as client:
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
        return _fail(f"{args.file}: {exc} ({progress.done} problems were imported before it)")
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


@_guarded
def export_command(args: argparse.Namespace) -> int:
    if args.format == "parquet" and not args.output:
        return _fail("--format parquet needs --output FILE")
    with _client(args) as client:
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
