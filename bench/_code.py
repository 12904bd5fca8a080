"""`--code DIR`: run a benchmark against another checkout's `service` and `trainer_client`
(a same-run before/after pair: `git worktree add /work/baseline <commit>`, then
`python bench/X.py --code /work/baseline`). The bench helpers stay this checkout's.

Call use_code_from_argv() before anything imports `service`: it puts DIR first on sys.path,
and `paced serve` processes started from there serve DIR's code (service/spawn.py puts the
imported package's root on their PYTHONPATH)."""

from __future__ import annotations

import sys
from pathlib import Path


def code_from_argv(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--code" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--code="):
            return arg.split("=", 1)[1]
    return None


def use_code_from_argv() -> str | None:
    code = code_from_argv(sys.argv)
    if code:
        sys.path.insert(0, str(Path(code).resolve()))
    return code


def served_code() -> str:
    """The checkout whose `service` this process imported."""
    import service

    return str(Path(service.__file__).resolve().parents[1])
