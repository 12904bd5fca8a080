"""service.spawn.ServiceProcess: one process per start, stopped on exit, and a failed start
says why (the server's log tail)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.spawn import ServiceProcess


def test_a_started_server_used_as_a_context_is_not_started_twice(tmp_path: Path):
    server = ServiceProcess(workdir=tmp_path)
    with server.start(timeout_s=60) as same:
        assert same is server and server.starts == 1
        first = server.proc
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert server.proc is first and first.poll() is not None  # the one process, stopped
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/healthz", timeout=2)
    assert server.log().count("--- start") == 1


def test_a_failed_start_raises_with_the_log_tail_and_leaves_nothing_running(tmp_path: Path):
    server = ServiceProcess(workdir=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/x")
    with pytest.raises(RuntimeError, match="server exited with") as failed:
        server.start(timeout_s=60)
    assert "accepting TCP/IP connections" in str(failed.value)  # the log tail: the reason
    assert not server.running
