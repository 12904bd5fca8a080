"""Fixtures: a fresh database per test on each backend, and server processes cleaned up after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from tests.reliability.servers import Server


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, unmigrated database (`paced serve` migrates it), dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'paced.db'}"
        return
    server_url = request.getfixturevalue("postgres_server_url")
    url = create_pg_database(server_url)
    yield url
    drop_pg_database(server_url, url)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    """Append Server objects here; every one still running is stopped at teardown."""
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def start_server(servers: list[Server], tmp_path: Path):
    def start(database_url: str, **kwargs) -> Server:
        server = Server(database_url=database_url, workdir=tmp_path, **kwargs)
        servers.append(server)
        return server.start()

    return start
