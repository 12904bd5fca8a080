"""Start a real `paced serve` process for benchmarks (loopback only)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from trainer_client.trainer.local_service import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
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
    """Migrate, then run `paced serve` with `workers` processes; yields the base URL."""
    from service import migrate

    migrate.upgrade(database_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACED_")}
    env.update(
        {"PYTHONPATH": str(ROOT), "PACED_DATABASE_URL": database_url, "PACED_LOG_LEVEL": "warning"}
    )
    env.update(extra_env or {})
    # `paced serve --workers N`: one SO_REUSEPORT socket per worker (service/workers.py).
    cmd = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(cmd, cwd=workdir, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout_s=60)
        PIDS[url] = proc.pid
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)
