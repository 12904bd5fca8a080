"""What the commands that talk to a running service share: the --url/--token/--json flags,
the client, one-line errors instead of tracebacks, tables and JSON output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client is imported when a command runs: the parser stays cheap
    from trainer_client.client import PacedClient

DEFAULT_URL = "http://127.0.0.1:8000"
Command = Callable[[argparse.Namespace], int]


def service_flags(*, json_output: bool = False) -> argparse.ArgumentParser:
    """A parent parser: --url and --token (or $PACED_URL / $PACED_TOKEN), and --json."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("PACED_URL", DEFAULT_URL))
    common.add_argument("--token", default=os.environ.get("PACED_TOKEN"), help="admin or run token")
    if json_output:
        common.add_argument(
            "--json", action="store_true", help="print JSON (for scripts) instead of a table"
        )
    return common


def client(args: argparse.Namespace) -> PacedClient:
    from trainer_client.client import PacedClient

    return PacedClient(args.url, token=args.token)


def fail(message: str) -> int:
    print(f"paced: {message}", file=sys.stderr)
    return 1


def guarded(command: Command) -> Command:
    """Service errors become one readable line and exit status 1, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        from trainer_client.errors import PacedError

        try:
            return command(args)
        except PacedError as exc:
            return fail(str(exc))

    run.__doc__ = command.__doc__
    return run


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def print_json(value: Any) -> None:
    """Models (or lists of them) as JSON, one document on stdout."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if hasattr(v, "model_dump") else v for v in value]
    print(json.dumps(value, indent=2))


def one_line(text: str, width: int) -> str:
    """A prompt on one line of at most `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
