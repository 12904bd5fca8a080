"""Fixtures: a fresh database per test on each backend, and server processes cleaned up after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.spawn import ServiceProcess
from tests.reliability.servers import reliability_server


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    """Append ServiceProcess objects here; every one still running is stopped at teardown."""
    started: list[ServiceProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def start_server(servers: list[ServiceProcess], tmp_path: Path):
    def start(database_url: str, env: dict | None = None) -> ServiceProcess:
        server = reliability_server(database_url, tmp_path, env)
        servers.append(server)
        return server.start()

    return start
