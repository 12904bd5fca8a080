"""/docs and /redoc render from files the service serves itself: no CDN, no internet.

A real `paced serve` and headless Chromium with every host but loopback unreachable; the
screenshot goes to test-output/docs/ (gitignored). Skipped without chromium unless
PACED_BROWSER_REQUIRED=1 (CI sets it).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from service.spawn import ServiceProcess
from tests.service.test_dashboard_browser import browse, chromium  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "docs"
# Any host but loopback resolves to nowhere: a page that needs a CDN stays blank.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    service = ServiceProcess(tmp_path_factory.mktemp("docs")).start()
    yield service
    service.stop()


def test_the_pages_load_only_the_services_own_files(server):
    for page in ("/docs", "/redoc"):
        html = httpx.get(server.url + page).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/") for s in sources), (page, sources)
        for source in sources:
            assert httpx.get(server.url + source).status_code == 200, source


def test_swagger_ui_lists_the_operations_offline(server, chromium, tmp_path):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "docs.png"
    browse(chromium, tmp_path / "shot", f"{server.url}/docs", OFFLINE, f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
    dom = browse(chromium, tmp_path / "dom", f"{server.url}/docs", OFFLINE, "--dump-dom").stdout
    operations = set(re.findall(r'id="operations-[A-Za-z]+-([a-z_]+)"', dom))
    assert {"draw_batch", "post_outcomes", "create_run", "create_dataset"} <= operations
    assert len(operations) >= 15


def test_redoc_renders_offline(server, chromium, tmp_path):  # noqa: F811
    dom = browse(chromium, tmp_path / "dom", f"{server.url}/redoc", OFFLINE, "--dump-dom").stdout
    assert "draw_batch" in dom or "Draw Batch" in dom
