"""Start a real `paced serve` process for benchmarks (loopback only)."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.spawn import ServiceProcess

PG_SERVER = os.environ.get(
    "PACED_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextlib.contextmanager
def pg_database():
    """A fresh, uniquely named PostgreSQL database, dropped afterwards."""
    name = f"paced_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# base URL -> pid of the `paced serve` process behind it (benches read its CPU time).
PIDS: dict[str, int] = {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def serve(database_url: str, workdir: Path, workers: int = 1, extra_env: dict | None = None):
    """Run `paced serve` (it migrates first) with `workers` processes; yields the base URL.

    `paced serve --workers N`: one SO_REUSEPORT socket per worker (service/workers.py)."""
    server = ServiceProcess(
        workdir=workdir,
        database_url=database_url,
        settings={"PACED_LOG_LEVEL": "warning", **(extra_env or {})},
        args=("--workers", str(workers)),
    )
    with server.start(timeout_s=60):
        PIDS[server.url] = server.proc.pid
        yield server.url
