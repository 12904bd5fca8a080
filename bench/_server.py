"""Start a real `paced serve` process for benchmarks (loopback only)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = os.environ.get(
    "PACED_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise TimeoutError("server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)
