"""Fixtures: a fresh database per test on each backend, and server processes cleaned up after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.servers import Server


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
