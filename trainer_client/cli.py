"""The ``paced`` command line: every command, each defined next to the code it drives.

- service commands (``serve``, ``db upgrade``): service/cli.py, loading the service lazily;
- trainer commands (``teacher``, ``train``): trainer_client/cli_commands.py;
- inspection commands (``runs``, ``show``, ``import``, ``export``): trainer_client/inspect_cli.py,
  which talk to a running service through the HTTP client.

Commands import what they need when they run, so ``paced serve`` never loads torch and
``paced show`` never loads the service.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from service import cli as service_cli
from trainer_client import inspect_cli


def lazy(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    """A command that imports `module` only when it runs."""

    def run(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), func)(args) or 0)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paced", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    service_cli.register(sub)
    try:  # the trainer's flags need its config module; an install without it still serves
        from trainer_client import cli_commands
    except ImportError:
        pass
    else:
        cli_commands.register(sub, lazy)
    inspect_cli.register(sub, lazy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return service_cli.run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
