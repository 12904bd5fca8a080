"""`paced serve` refuses to listen beyond loopback without an admin token, unless told to
with --allow-unauthenticated-network (or PACED_ALLOW_UNAUTHENTICATED_NETWORK=1)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from service.cli import EXIT_REFUSED, is_loopback
from service.spawn import ServiceProcess, child_environment, free_port, serve_command


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.168.0.7", "paced.internal"])
def test_hosts_beyond_loopback(host: str):
    assert not is_loopback(host)


def serve_exposed(workdir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    """`paced serve --host 0.0.0.0` run to its end (a refusal ends it at once)."""
    return subprocess.run(
        serve_command(host="0.0.0.0", port=free_port(), args=args),
        cwd=workdir,
        env=child_environment(settings, inherit_settings=False),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exposed_without_a_token_is_refused_before_touching_the_database(tmp_path: Path):
    done = serve_exposed(tmp_path)
    assert done.returncode == EXIT_REFUSED == 2
    assert "refusing to serve on 0.0.0.0 without authentication" in done.stderr
    assert "PACED_ADMIN_TOKEN" in done.stderr and "--allow-unauthenticated-network" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no paced.db: refused before the migrations


def test_an_empty_token_counts_as_none(tmp_path: Path):
    done = serve_exposed(tmp_path, PACED_ADMIN_TOKEN="")
    assert done.returncode == EXIT_REFUSED
    assert "without authentication" in done.stderr


def test_loopback_without_a_token_still_serves(tmp_path: Path):
    with ServiceProcess(workdir=tmp_path, host="127.0.0.1") as server:
        assert httpx.get(f"{server.url}/v1/datasets").status_code == 200  # open


def test_exposed_with_a_token_serves_and_asks_for_it(tmp_path: Path):
    settings = {"PACED_ADMIN_TOKEN": "exposure-token"}
    with ServiceProcess(workdir=tmp_path, host="0.0.0.0", settings=settings) as server:
        assert httpx.get(f"{server.url}/v1/datasets").status_code == 401
        headers = {"Authorization": "Bearer exposure-token"}
        assert httpx.get(f"{server.url}/v1/datasets", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "how",
    [
        {"args": ("--allow-unauthenticated-network",)},
        {"settings": {"PACED_ALLOW_UNAUTHENTICATED_NETWORK": "1"}},
    ],
    ids=["flag", "environment"],
)
def test_the_explicit_opt_out_serves_open_and_says_so(tmp_path: Path, how: dict):
    with ServiceProcess(workdir=tmp_path, host="0.0.0.0", **how) as server:
        assert httpx.get(f"{server.url}/v1/datasets").status_code == 200
        assert "serving WITHOUT authentication on 0.0.0.0" in server.log()
