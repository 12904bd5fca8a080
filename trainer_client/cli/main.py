"""The ``paced`` command line: every command, each defined next to the code it drives.

- run commands (``runs``, ``show``, ``top``, ``create-run``): cli/runs.py, and data commands
  (``import``, ``export``): cli/inspect.py, and ``priors``: cli/priors.py, over HTTP through
  the typed client (the base install has them; ``--json`` for scripts);
- trainer commands (``teacher``, ``train``, ``vllm-export``): cli/train.py (the ``trainer``
  extra's torch is imported only when one runs);
- service commands (``serve``, ``db upgrade``): registered by the server distribution through
  the ``paced.commands`` entry point group (service/cli.py). The client never imports the
  service: without the server installed, ``paced serve`` names the line that installs it.

Commands import what they need when they run, so ``paced serve`` never loads torch and
``paced show`` never loads the service.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from trainer_client.cli import inspect as inspect_cli
from trainer_client.cli import priors as priors_cli
from trainer_client.cli import runs as runs_cli
from trainer_client.cli import train as train_cli

COMMAND_GROUP = "paced.commands"
SERVER_INSTALL = "pip install 'paced-curriculum[server]'   (in a clone: pip install '.[server]')"
# The exit status when a command's distribution is not installed.
EXIT_NOT_INSTALLED = 3


def lazy(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    """A command that imports `module` only when it runs."""

    def run(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), func)(args) or 0)

    return run


def _server_missing(args: argparse.Namespace) -> int:
    print(f"paced {args.command}: the server is not installed: {SERVER_INSTALL}", file=sys.stderr)
    return EXIT_NOT_INSTALLED


def _register_plugins(sub: argparse._SubParsersAction) -> None:
    """Commands of the other paced distributions installed here (the server's)."""
    for entry in entry_points(group=COMMAND_GROUP):
        entry.load()(sub)
    for name in ("serve", "db"):
        if name not in sub.choices:
            missing = sub.add_parser(name, help="(needs the server: " + SERVER_INSTALL + ")")
            missing.set_defaults(func=_server_missing)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paced", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v: every HTTP request)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _register_plugins(sub)
    train_cli.register(sub, lazy)
    runs_cli.register(sub, lazy)
    inspect_cli.register(sub, lazy)
    priors_cli.register(sub, lazy)
    return parser


def configure_logging(verbosity: int) -> None:
    """Warnings only by default; -v shows INFO (httpx logs each request there)."""
    level = logging.INFO if verbosity else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # A missing command's own flags are unknown here: it only names its install line.
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.func is not _server_missing:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    configure_logging(args.verbose)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
