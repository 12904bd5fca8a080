"""TLS in front of the service with a real HAProxy running deploy/haproxy-tls.cfg (the
example docs/operations.md gives): the typed client talks HTTPS to the proxy, the token
crosses the network encrypted only, and plain HTTP on the TLS port gets nowhere.

HAProxy is a Debian package (.ci/run installs it): without it the test is skipped, unless
PACED_LB_REQUIRED=1, where it fails. The certificate is made here with openssl.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.spawn import ServiceProcess, free_port
from tests.service.test_load_balancer import haproxy_binary  # noqa: F401  (fixture)
from trainer_client import PacedClient, Unauthorized

ROOT = Path(__file__).resolve().parents[2]
TLS_CONFIG = ROOT / "deploy" / "haproxy-tls.cfg"
TOKEN = "tls-admin-token"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(PEM with certificate + key for HAProxy, the certificate alone for the client)."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    bundle = directory / "haproxy.pem"
    bundle.write_bytes(cert.read_bytes() + key.read_bytes())
    return bundle, cert


@pytest.fixture
def tls_proxy(haproxy_binary: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:  # noqa: F811
    bundle, cert = self_signed(tmp_path)
    settings = {"PACED_ADMIN_TOKEN": TOKEN}
    database = f"sqlite:///{tmp_path / 'paced.db'}"
    with ServiceProcess(workdir=tmp_path, database_url=database, settings=settings) as server:
        port = free_port()
        env = {
            **os.environ,
            "PACED_TLS_BIND": f"127.0.0.1:{port}",
            "PACED_TLS_CERT": str(bundle),
            "PACED_UPSTREAM": f"127.0.0.1:{server.port}",
        }
        log_path = tmp_path / "haproxy.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [haproxy_binary, "-db", "-f", str(TLS_CONFIG)], env=env, stdout=log, stderr=log
            )
        try:
            # The plain-HTTP health wait would fail against TLS: wait for the port instead.
            url = f"https://127.0.0.1:{port}"
            context = ssl.create_default_context(cafile=str(cert))
            with httpx.Client(verify=context) as probe:
                wait_healthy_tls(probe, url, proc, log_path)
            yield url, cert
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def wait_healthy_tls(http: httpx.Client, url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if http.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(log.read_text())


def test_the_client_works_over_tls_with_its_token(tls_proxy):
    url, cert = tls_proxy
    context = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(verify=context) as http:
        with PacedClient(url, token=TOKEN, http_client=http) as paced:
            paced.create_dataset("tls")
            paced.upsert_problems("tls", [{"id": "a", "prompt": "1+1=", "answer": "2"}])
            paced.create_run("tls-run", "tls")
            paced.post_outcomes(
                "tls-run", [{"problem_id": "a", "attempts": 4, "successes": 2, "step": 0}]
            )
            assert [i.problem_id for i in paced.batch("tls-run", size=1, seed=0).items] == ["a"]
        with PacedClient(url, http_client=http) as anonymous, pytest.raises(Unauthorized):
            anonymous.list_runs()
        answer = http.get(f"{url}/healthz")
        assert answer.headers["strict-transport-security"] == "max-age=31536000"


def test_an_untrusted_certificate_and_plain_http_are_refused(tls_proxy):
    url, _ = tls_proxy
    with pytest.raises(httpx.ConnectError):  # verification against the system store fails
        httpx.get(f"{url}/healthz")
    with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port: no answer
        httpx.get(url.replace("https://", "http://") + "/healthz", timeout=5)
