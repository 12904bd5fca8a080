"""The dashboard in a real headless Chromium against a real `paced serve` process.

Needs Debian's chromium (`apt-get install -y chromium`). Without it the tests are skipped,
unless PACED_BROWSER_REQUIRED=1 (CI sets it), in which case they fail.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.service.test_inspect_cli import ADMIN, server  # noqa: F401 (fixture)

N_PROBLEMS = 10_000
STEPS = 6
BINS = 20  # run.js asks the overview for 20 histogram bins
TOP = 10
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("PACED_BROWSER_REQUIRED") == "1":
            pytest.fail("chromium is not installed but PACED_BROWSER_REQUIRED=1")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return path


def browse(chromium: str, profile: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    """Load url, let its scripts run for a few (virtual) seconds; console lines go to stderr."""
    command = [
        chromium,
        *CHROME_FLAGS,
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=4000",
        *extra,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def console_lines(stderr: str) -> list[str]:
    # Every console message and uncaught error is logged as ":CONSOLE"; the pages log nothing.
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def populate(url: str) -> None:
    """10,000 problems; outcomes over 6 steps for a growing share, pass rates drifting up."""
    rng = np.random.default_rng(7)
    skill = rng.normal(0.0, 1.5, N_PROBLEMS)
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120
    ) as http:
        http.post("/v1/datasets", json={"name": "arith"}).raise_for_status()
        problems = [{"id": f"q{i:05d}", "prompt": f"{i}+1="} for i in range(N_PROBLEMS)]
        http.post("/v1/datasets/arith/problems", json={"problems": problems}).raise_for_status()
        http.post("/v1/runs", json={"name": "demo", "dataset": "arith"}).raise_for_status()
        for step in range(STEPS):
            touched = np.arange(min(N_PROBLEMS, 1500 * (step + 1)))
            p = 1.0 / (1.0 + np.exp(-(skill[touched] + 0.4 * step)))
            successes = rng.binomial(8, p)
            outcomes = [
                {"problem_id": f"q{i:05d}", "attempts": 8, "successes": int(k), "step": step}
                for i, k in zip(touched, successes, strict=True)
            ]
            http.post("/v1/runs/demo/outcomes", json={"outcomes": outcomes}).raise_for_status()
        history = http.get("/v1/runs/demo/history").json()["items"]
        assert [h["step"] for h in history] == list(range(STEPS))


def test_run_dashboard_draws_its_charts_without_console_errors(
    chromium: str,
    server: str,  # noqa: F811
    tmp_path: Path,
):
    populate(server)
    page = f"{server}/runs/demo?token={ADMIN}"

    dumped = browse(chromium, tmp_path / "profile", page, "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert console_lines(dumped.stderr) == []
    assert 'data-state="ready"' in dom, re.findall(r'id="status"[^<]*', dom)

    assert dom.count('class="bar"') == BINS  # one bar per histogram bin
    assert dom.count('class="kernel-curve"') == 1
    positions = re.search(r'<svg id="kernel".*?</svg>', dom, re.S).group(0)
    assert 1 <= positions.count('class="position"') <= BINS
    for zone in ("unseen", "intractable", "frontier", "mastered"):
        assert dom.count(f'class="zone-area zone-{zone}"') == 1
    assert dom.count('class="effective-line"') == 1
    # The zone chart's last point is what the cards say (history is never staler than them).
    last = json.loads(html.unescape(re.search(r'data-last-zones="([^"]*)"', dom).group(1)))
    cards = {z: int(n) for z, n in re.findall(r'data-zone="(\w+)" data-count="(\d+)"', dom)}
    assert set(cards) == {"unseen", "intractable", "frontier", "mastered"}
    assert last == cards
    frontier = re.search(r'<table id="frontier".*?</table>', dom, re.S).group(0)
    assert frontier.count("<tr>") == 1 + TOP  # header + the top 10
    assert "w(p) = p^1 (1-p)^1" in dom  # the run's settings

    screenshot = tmp_path / "dashboard.png"
    shot = browse(
        chromium,
        tmp_path / "profile",
        page,
        "--window-size=1440,1500",
        f"--screenshot={screenshot}",
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_lines(shot.stderr) == []
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a blank page compresses to a few KB
    print(f"dashboard screenshot: {screenshot}")


def test_run_list_links_to_each_run(chromium: str, server: str, tmp_path: Path):  # noqa: F811
    with httpx.Client(
        base_url=server, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    ) as http:
        http.post("/v1/datasets", json={"name": "d"}).raise_for_status()
        for name in ("alpha-run", "beta-run"):
            http.post("/v1/runs", json={"name": name, "dataset": "d"}).raise_for_status()
    dumped = browse(chromium, tmp_path / "profile", f"{server}/?token={ADMIN}", "--dump-dom")
    assert console_lines(dumped.stderr) == []
    assert 'data-state="ready"' in dumped.stdout
    assert '<a href="/runs/alpha-run">alpha-run</a>' in dumped.stdout
    assert '<a href="/runs/beta-run">beta-run</a>' in dumped.stdout


def test_without_a_token_the_page_says_why(chromium: str, server: str, tmp_path: Path):  # noqa: F811
    dumped = browse(chromium, tmp_path / "profile", f"{server}/runs/demo", "--dump-dom")
    assert 'data-state="error"' in dumped.stdout
    assert "401" in dumped.stdout and "?token=" in dumped.stdout
