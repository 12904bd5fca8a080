"""Tests against the real verl 0.9.1 (CPU) in its own environment:

    make verl-env && make test-verl      # .venv-verl/bin/pytest -m verl tests/verl

Without verl they skip, unless PACED_VERL_REQUIRED=1 (CI sets it): then they fail. Test
modules import verl, Ray and TransferQueue inside fixtures only, so the main environment
collects them without error (and `make test` deselects them by the `verl` marker).

The paced service runs as its own process. Its interpreter is $PACED_SERVER_PYTHON, else this
one when it has the server installed (make verl-env installs it), else the main .venv's.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.spawn import child_environment, free_port, serve_command, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
SERVER_MODULES = ("fastapi", "sqlalchemy", "alembic", "uvicorn")


@pytest.fixture(scope="session", autouse=True)
def verl_installed() -> str:
    try:
        import transfer_queue  # noqa: F401
        import verl
    except ImportError as error:
        if os.environ.get("PACED_VERL_REQUIRED") == "1":
            pytest.fail(f"verl is not importable but PACED_VERL_REQUIRED=1 ({error})")
        pytest.skip("verl is not installed here: make verl-env && make test-verl")
    return verl.__version__


def server_python() -> str:
    chosen = os.environ.get("PACED_SERVER_PYTHON")
    if chosen:
        return chosen
    if all(importlib.util.find_spec(name) for name in SERVER_MODULES):
        return sys.executable
    return str(ROOT / ".venv" / "bin" / "python")


class PacedServer:
    """`python -m service.cli serve` under server_python(), on a free port, logging to a file."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        self.workdir, self.database_url = workdir, database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PacedServer:
        command = serve_command(host="127.0.0.1", port=self.port, database_url=self.database_url)
        command[0] = server_python()
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=child_environment({}, inherit_settings=False),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_healthy(self.url, self.proc, 60, describe=lambda: self.log_path.read_text()[-3000:])
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def paced_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite-backed service for the module's tests (each test makes its own run)."""
    workdir = tmp_path_factory.mktemp("paced-verl")
    with PacedServer(workdir, f"sqlite:///{workdir / 'paced.db'}") as server:
        yield server.url


@pytest.fixture(scope="session")
def transfer_queue():
    """Ray, then TransferQueue: tq.init() places 3 actors and hangs on a 2-core machine unless
    Ray was started first with enough logical CPUs."""
    import ray
    import transfer_queue as tq

    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    tq.init()
    yield tq
    tq.close()
    ray.shutdown()


@pytest.fixture
def partition_id() -> str:
    """Each test writes its own partition: every poll lists all of them."""
    return f"test-{uuid.uuid4().hex}"
