"""``paced serve --workers N``: N processes, each with its own SO_REUSEPORT listening socket.

Why not uvicorn's own ``--workers``: there the processes share one socket and whichever
event loop wakes first accepts, so long-lived keep-alive connections from a trainer's many
workers can pile onto one process. With one socket per process the kernel spreads new
connections by hash. (On the 2-core benchmark the two gave the same throughput within run
to run noise; the even spread is what this buys, and it needs no uvicorn supervisor.)
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
from typing import Any


def reuseport_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _worker(host: str, port: int, overrides: dict[str, Any], graceful_timeout: float) -> None:
    import uvicorn

    from service.app import create_app
    from service.heap import freeze_startup_heap
    from service.settings import Settings

    settings = Settings(**overrides)
    sock = reuseport_socket(host, port)
    app = create_app(settings)
    freeze_startup_heap()
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        access_log=settings.access_log,
        # uvicorn annotates int, but hands the value to asyncio.wait_for: seconds, any float.
        timeout_graceful_shutdown=graceful_timeout,  # type: ignore[arg-type]
    )
    uvicorn.Server(config).run(sockets=[sock])


def serve(
    workers: int, host: str, port: int, overrides: dict[str, Any], graceful_timeout: float
) -> int:
    """Run the workers until SIGINT/SIGTERM (forwarded to each); returns an exit status."""
    if port == 0:
        raise ValueError("--workers needs a fixed --port (each worker binds it)")
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(
            target=_worker, args=(host, port, overrides, graceful_timeout), daemon=False
        )
        for _ in range(workers)
    ]

    def forward(signum: int, _frame: Any) -> None:
        # Each worker's uvicorn shuts down gracefully on SIGINT and SIGTERM alike.
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    # uvicorn re-raises the signal it shut down on: a worker ended by the signal we
    # forwarded stopped cleanly.
    stopped = {0, -signal.SIGINT, -signal.SIGTERM}
    return max((0 if proc.exitcode in stopped else abs(proc.exitcode or 1)) for proc in procs)
