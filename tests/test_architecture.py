"""The package boundaries, checked both ways on every module's imports (docs/architecture.md).

- service/ imports nothing of trainer_client (the service never depends on a client);
- the client core (trainer_client's top-level modules) imports the standard library, httpx,
  pydantic, orjson and itself only: no trainer, task, integration, torch, numpy or service;
- trainer_client/local/service.py is the one module of trainer_client that imports the
  service; trainer/ and integrations/ reach it over HTTP through the client core;
- trainer/ and integrations/ import no tasks/, cli/ or local/ code (tasks build on the
  trainer, not the other way round); the pure core service/curriculum imports no I/O.

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "trainer_client"
# The three dependencies, what they are built on (always installed with them), and itself.
CLIENT_CORE_DEPENDENCIES = {
    "httpx",
    "pydantic",
    "orjson",
    "anyio",  # httpx's
    "pydantic_core",  # pydantic's
    "typing_extensions",  # pydantic's
    "trainer_client",
}
THE_LOCAL_SERVICE_HELPER = CLIENT / "local" / "service.py"


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def top(module: str) -> str:
    return module.split(".")[0]


def python_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def client_core_files() -> list[Path]:
    return sorted(CLIENT.glob("*.py"))


def offenders(files: list[Path], bad) -> dict[str, list[str]]:
    out = {}
    for path in files:
        hits = sorted(m for m in imported_modules(path) if bad(m))
        if hits:
            out[str(path.relative_to(ROOT))] = hits
    return out


def test_the_service_imports_nothing_of_the_client():
    assert offenders(python_files(ROOT / "service"), lambda m: top(m) == "trainer_client") == {}


def test_the_client_core_imports_only_its_three_dependencies_and_the_standard_library():
    stdlib = sys.stdlib_module_names

    def foreign(module: str) -> bool:
        return top(module) not in stdlib and top(module) not in CLIENT_CORE_DEPENDENCIES

    assert offenders(client_core_files(), foreign) == {}


def test_the_client_core_imports_no_trainer_task_integration_or_cli_module():
    def inner(module: str) -> bool:
        return (
            module.startswith("trainer_client.")
            and module.count(".") >= 1
            and (module.split(".")[1] in {"trainer", "tasks", "integrations", "cli", "local"})
        )

    assert offenders(client_core_files(), inner) == {}


def test_only_the_local_service_helper_imports_the_service():
    files = [p for p in python_files(CLIENT) if p != THE_LOCAL_SERVICE_HELPER]
    assert offenders(files, lambda m: top(m) == "service") == {}
    assert "service.spawn" in imported_modules(THE_LOCAL_SERVICE_HELPER)


@pytest.mark.parametrize("room", ["trainer", "integrations"])
def test_the_trainer_and_integrations_build_on_the_client_not_on_tasks_or_cli(room: str):
    def upward(module: str) -> bool:
        return module.split(".")[:2] in (
            ["trainer_client", "tasks"],
            ["trainer_client", "cli"],
            ["trainer_client", "local"],
        )

    assert offenders(python_files(CLIENT / room), upward) == {}


def test_the_pure_core_does_no_io():
    io = {"fastapi", "starlette", "sqlalchemy", "httpx", "alembic", "service.store", "service.api"}

    def impure(module: str) -> bool:
        return top(module) in io or any(module.startswith(p + ".") or module == p for p in io)

    assert offenders(python_files(ROOT / "service" / "curriculum"), impure) == {}


def test_importing_the_client_loads_no_heavy_or_server_module():
    """At run time too: the client loads no torch, numpy or service module, and the `paced`
    parser (which asks the installed server for its commands) loads no app, ORM or torch."""
    probe = (
        "import sys\n"
        "def loaded(names): return [m for m in names if m in sys.modules]\n"
        "import trainer_client\n"
        "print(loaded(['torch', 'numpy', 'service', 'fastapi', 'sqlalchemy']))\n"
        "from trainer_client.cli.main import build_parser\n"
        "build_parser()\n"
        "print(loaded(['torch', 'numpy', 'service.app', 'fastapi', 'sqlalchemy']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "[]"]
