"""Run `paced serve` as a child process: the one helper for tests, benchmarks and demos.

It lives in the service package because it starts the service (``python -m service.cli``)
and needs nothing else: the standard library and httpx (a service dependency). The client
may import it (the `paced` command already registers the service's commands); the service
never imports the client.

    with ServiceProcess(database_url=url, workdir=tmp) as server:
        httpx.get(f"{server.url}/healthz")

A `ServiceProcess` is restartable on the same port and database (crash and shutdown
tests), writes the server's output to a log file (never a pipe, whose full buffer would
block the server) and puts the log's tail into the error when the server fails to start.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

# The directory holding the `service` package: on PYTHONPATH, `-m service.cli` runs this very
# copy of the service whether it is installed or a source checkout.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
LOG_TAIL_CHARS = 3000


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    url: str,
    process: subprocess.Popen[bytes],
    timeout_s: float = 30.0,
    describe: Callable[[], str] = lambda: "",
    path: str = "/healthz",
) -> None:
    """Poll `path` until it answers 200; fail early (with describe()'s text, e.g. the log
    tail) if the process exits, and with TimeoutError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{describe()}")
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server did not answer {path} within {timeout_s} s\n{describe()}")


def serve_command(
    *,
    host: str,
    port: int,
    database_url: str | None = None,
    args: Sequence[str] = (),
) -> list[str]:
    """The `paced serve` command line (without --database-url the service's default applies:
    $PACED_DATABASE_URL, else paced.db in the working directory)."""
    command = [sys.executable, "-m", "service.cli", "serve", "--host", host, "--port", str(port)]
    if database_url is not None:
        command += ["--database-url", database_url]
    return command + list(args)


def child_environment(settings: Mapping[str, str], *, inherit_settings: bool) -> dict[str, str]:
    """This process's environment for the child, with `settings` (PACED_* variables) on top.

    Without inherit_settings, PACED_* variables from outside are dropped, so a developer's
    own PACED_ADMIN_TOKEN or PACED_DATABASE_URL never leaks into a test's server."""
    env = {k: v for k, v in os.environ.items() if inherit_settings or not k.startswith("PACED_")}
    paths = [str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(settings)
    return env


@dataclass
class ServiceProcess:
    """One `paced serve` process (on 127.0.0.1 by default), restartable on the same port and
    database.

    settings: PACED_* environment variables for the server; args: more `serve` arguments
    (e.g. ``("--workers", "2")``); database_url None: the service's default, in workdir.
    """

    workdir: Path
    database_url: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    args: Sequence[str] = ()
    inherit_settings: bool = False
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    log_name: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        # A server bound to every interface is reached on loopback.
        reach = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(self.host, self.host)
        return f"http://{reach}:{self.port}"

    @property
    def log_path(self) -> Path:
        return Path(self.workdir) / (self.log_name or f"server-{self.port}.log")

    def start(self, timeout_s: float = 60.0) -> ServiceProcess:
        """Start the server and return once /healthz answers (the log tail if it never does)."""
        self.workdir = Path(self.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"--- start {self.starts}\n")
            log.flush()
            self.proc = subprocess.Popen(
                serve_command(
                    host=self.host,
                    port=self.port,
                    database_url=self.database_url,
                    args=self.args,
                ),
                cwd=self.workdir,
                env=child_environment(self.settings, inherit_settings=self.inherit_settings),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_healthy(self.url, self.proc, timeout_s, describe=self.log_tail)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after timeout_s; returns the exit status (None if never run)."""
        if self.proc is None:
            return None
        if self.running:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def sigterm(self) -> None:
        """Ask for a graceful shutdown and return at once (the caller watches the drain)."""
        assert self.proc is not None, "not started"
        self.proc.send_signal(signal.SIGTERM)

    def kill9(self) -> None:
        assert self.proc is not None, "not started"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def log_tail(self) -> str:
        return self.log()[-LOG_TAIL_CHARS:]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> ServiceProcess:
        # `with server:` starts it; `with server.start(timeout_s):` has already started it.
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
