"""Run `paced serve` in the background (the demos, the trainer tests and the benches use it).

The one module of trainer_client that imports the service (it needs the `[server]` extra):
everything else reaches the service over HTTP only (tests/test_architecture.py). The vLLM
server launcher next to it borrows the spawner's free port and health wait from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.spawn import ServiceProcess, free_port, wait_healthy

__all__ = ["free_port", "local_service", "wait_healthy"]


@contextmanager
def local_service(
    directory: str | Path, *, timeout_s: float = 60.0, database_url: str | None = None
) -> Iterator[str]:
    """Start the service on a free port with its log (and, without `database_url`, its SQLite
    database) in `directory`; yields the base URL once /healthz answers, and stops the
    process on exit."""
    directory = Path(directory).resolve()
    server = ServiceProcess(
        workdir=directory,
        database_url=database_url or f"sqlite:///{directory / 'paced.db'}",
        args=("--graceful-timeout", "2"),
        # The caller's PACED_* settings apply, as when they run `paced serve` themselves.
        inherit_settings=True,
        log_name="service.log",
    )
    with server.start(timeout_s):
        yield server.url
