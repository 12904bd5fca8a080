"""Run `paced serve` on SQLite in the background (the demo and the trainer tests use it)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# The repository root, so `-m service.cli` resolves even without an installed package.
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_service(
    directory: str | Path, *, timeout_s: float = 60.0, database_url: str | None = None
) -> Iterator[str]:
    """Start the service on a free port with its log (and, without `database_url`, its SQLite
    database) in `directory`; yields the base URL once /healthz answers, and stops the
    process on exit."""
    directory = Path(directory).resolve()  # the service runs from the repository root
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = directory / "service.log"
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
    command += ["--database-url", database_url or f"sqlite:///{directory / 'paced.db'}"]
    command += ["--graceful-timeout", "2"]
    with log_path.open("w+") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process, timeout_s, describe=lambda: log_path.read_text()[-2000:])
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(
    url: str,
    process: subprocess.Popen,
    timeout_s: float = 30.0,
    describe: Callable[[], str] = lambda: "",
    path: str = "/healthz",
) -> None:
    """Poll `path` until it answers 200; fail early (with describe()'s text, e.g. the log
    tail) if the process exits, and with TimeoutError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited with {process.returncode}:\n{describe()}")
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"service did not answer {path} within {timeout_s} s\n{describe()}")
