"""Where the default database lives: a SQLite file in the server's working directory, whose
absolute path the server logs at start (docs/operations.md, "Where the data lives")."""

from __future__ import annotations

from service.cli import describe_database
from service.spawn import ServiceProcess


def test_the_server_logs_the_default_databases_absolute_path(tmp_path):
    server = ServiceProcess(tmp_path / "work").start()
    try:
        log = server.log_path.read_text()
    finally:
        server.stop()
    path = (tmp_path / "work" / "paced.db").resolve()
    assert f"database: SQLite file {path}" in log
    assert path.exists()


def test_other_databases_are_named_without_their_password():
    described = describe_database("postgresql://paced:secret@db:5432/paced")
    assert "secret" not in described and "db:5432/paced" in described
