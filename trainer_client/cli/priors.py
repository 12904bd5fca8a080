"""``paced priors``: start a run from per-problem priors — a profile file (CSV, JSONL or
parquet; e.g. a reference model's pass rates, or another run's ``paced export``) or another
run's current estimates (``--from-run``) — over HTTP through the typed client.

A profile row: ``problem_id``, ``pass_rate`` and what it is worth in attempts, from the
``pseudo_attempts`` column, else an ``attempts`` column (an export's own counts), else
``--pseudo-attempts``. Rows without a pass rate (an export's unseen problems) are skipped.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from trainer_client.cli.common import client, fail, guarded, print_json, service_flags

FORMATS = ("csv", "jsonl", "parquet")


def register(subparsers: argparse._SubParsersAction, lazy: Callable[..., Any]) -> None:
    command = subparsers.add_parser(
        "priors",
        parents=[service_flags(json_output=True)],
        help="set a run's per-problem priors from a profile file or another run's estimates",
    )
    command.add_argument("run")
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="CSV, JSONL or parquet profile")
    source.add_argument("--from-run", help="copy this run's current estimates (admin token)")
    command.add_argument("--format", choices=FORMATS, default=None, help="default: by suffix")
    command.add_argument(
        "--pseudo-attempts", type=float, default=None, help="weight of rows that name none"
    )
    command.add_argument(
        "--max-pseudo-attempts", type=float, default=None, help="cap every weight (n0)"
    )
    command.add_argument("--replace", action="store_true", help="drop the run's other priors")
    command.set_defaults(func=lazy(__name__, "priors_command"))


def _format(path: str, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    suffix = Path(path).suffix.lower().lstrip(".")
    found = {"csv": "csv", "jsonl": "jsonl", "json": "jsonl", "parquet": "parquet"}.get(suffix)
    if found is None:
        raise ValueError(f"cannot tell the format of {path!r}: pass --format {'/'.join(FORMATS)}")
    return found


def _rows(path: str, fmt: str) -> Iterator[dict[str, Any]]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
    elif fmt == "csv":
        with open(path, encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)
    else:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"line {number}: not JSON ({exc.msg})") from None


def _number(value: Any) -> float | None:
    """A cell as a float; None when empty (CSV's '' and JSON's null alike)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return float(value)


def profile_items(
    rows: Iterable[dict[str, Any]], pseudo_attempts: float | None = None
) -> list[dict[str, Any]]:
    """Profile rows as priors items (see the module docstring for the columns)."""
    items = []
    for number, row in enumerate(rows, start=1):
        if "problem_id" not in row or "pass_rate" not in row:
            raise ValueError(f"row {number}: needs problem_id and pass_rate")
        rate = _number(row["pass_rate"])
        if rate is None:
            continue
        weight = _number(row.get("pseudo_attempts"))
        if weight is None:
            weight = _number(row.get("attempts"))
        if weight is None or weight <= 0:
            weight = pseudo_attempts
        if weight is None:
            raise ValueError(
                f"row {number}: no pseudo_attempts (or attempts): pass --pseudo-attempts"
            )
        items.append(
            {"problem_id": str(row["problem_id"]), "pass_rate": rate, "pseudo_attempts": weight}
        )
    return items


def read_profile(
    path: str, *, fmt: str | None = None, pseudo_attempts: float | None = None
) -> list[dict[str, Any]]:
    """A profile file's priors items, ready for PacedClient.set_priors."""
    return profile_items(_rows(path, _format(path, fmt)), pseudo_attempts)


@guarded
def priors_command(args: argparse.Namespace) -> int:
    with client(args) as paced:
        if args.from_run is not None:
            result = paced.copy_priors(
                args.run,
                args.from_run,
                max_pseudo_attempts=args.max_pseudo_attempts,
                replace=args.replace,
            )
        else:
            try:
                items = read_profile(
                    args.file, fmt=args.format, pseudo_attempts=args.pseudo_attempts
                )
                result = paced.set_priors(
                    args.run,
                    items,
                    max_pseudo_attempts=args.max_pseudo_attempts,
                    replace=args.replace,
                )
            except (OSError, ValueError) as exc:  # a pydantic ValidationError is a ValueError
                return fail(f"{args.file}: {exc}")
    if args.json:
        print_json(result)
    else:
        print(
            f"{args.run}: {result.updated} priors set, {result.problems_with_prior} problems "
            "with a prior"
        )
    return 0
