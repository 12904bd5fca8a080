"""The runs overview, compare page, prompts in the run tables and the problem page, in a real
headless Chromium against a real `paced serve` process, on SQLite and PostgreSQL.

20 runs on one dataset of 10,000 problems, 6 steps of outcomes each, seeded once per
backend through the API. Screenshots go to test-output/dashboard/ (gitignored). Like
test_dashboard_browser.py: skipped without chromium unless PACED_BROWSER_REQUIRED=1.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.spawn import ServiceProcess
from tests.conftest import wipe
from tests.service.test_dashboard_browser import browse, chromium, console_lines  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "dashboard"
ADMIN = "overview-admin-token"
N_PROBLEMS = 10_000
STEPS = 6
PER_STEP = 1_500  # outcomes per run and step: lean seeding, every step recorded in history
ARMS = {"paced": 7, "uniform": 7, "hard-filter": 6}  # 20 runs, as an experiment creates them
RUNS = [f"{arm}-s{seed}" for arm, seeds in ARMS.items() for seed in range(seeds)]
COMPARED = ["paced-s0", "uniform-s0", "hard-filter-s0"]
LINE_CHARTS = ["share-unseen", "share-intractable", "share-frontier", "share-mastered", "effective"]


def prompt_of(i: int) -> str:
    return f"What is {i} + {2 * i + 1}? Reply with the number only."


def seed(url: str) -> None:
    """One dataset, 20 runs; per step each run reports 8 rollouts of 1,500 random problems,
    its pass rates drifting up with the step (faster for paced than for uniform)."""
    skill = np.random.default_rng(0).normal(0.0, 1.5, N_PROBLEMS)
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120
    ) as http:
        http.post("/v1/datasets", json={"name": "arith"}).raise_for_status()
        problems = [
            {"id": f"q{i:05d}", "prompt": prompt_of(i), "answer": str(3 * i + 1)}
            for i in range(N_PROBLEMS)
        ]
        http.post("/v1/datasets/arith/problems", json={"problems": problems}).raise_for_status()
        for r, name in enumerate(RUNS):
            http.post("/v1/runs", json={"name": name, "dataset": "arith"}).raise_for_status()
            rng = np.random.default_rng(100 + r)
            speed = {"paced": 0.5, "uniform": 0.3, "hard-filter": 0.4}[name.rsplit("-s", 1)[0]]
            for step in range(STEPS):
                touched = rng.choice(N_PROBLEMS, PER_STEP, replace=False)
                p = 1.0 / (1.0 + np.exp(-(skill[touched] + speed * step)))
                outcomes = [
                    {"problem_id": f"q{i:05d}", "attempts": 8, "successes": int(k), "step": step}
                    for i, k in zip(touched, rng.binomial(8, p), strict=True)
                ]
                http.post(f"/v1/runs/{name}/outcomes", json={"outcomes": outcomes})
        summary = http.get("/v1/runs-summary").json()["items"]
        assert [item["latest"]["step"] for item in summary] == [STEPS - 1] * len(RUNS)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request: pytest.FixtureRequest, chromium: str, tmp_path_factory):  # noqa: F811
    """(backend, url) of a served, seeded, token-protected service."""
    from tests.conftest import BACKENDS

    if request.param not in BACKENDS:
        pytest.skip("PACED_TEST_DATABASE_URL is empty: no PostgreSQL server to test against")
    name = "pg_database_url" if request.param == "postgres" else "sqlite_database_url"
    database_url = request.getfixturevalue(name)
    wipe(database_url)
    server = ServiceProcess(
        workdir=tmp_path_factory.mktemp("overview"),
        database_url=database_url,
        settings={"PACED_ADMIN_TOKEN": ADMIN},
    )
    with server:
        seed(server.url)
        yield request.param, server.url


def dump(chromium: str, tmp_path: Path, url: str) -> str:  # noqa: F811
    """The page's DOM after its scripts ran; fails on any console message."""
    done = browse(chromium, tmp_path / "profile", url, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_lines(done.stderr) == []
    assert 'data-state="ready"' in done.stdout, re.findall(r'id="status"[^<]*<', done.stdout)
    return done.stdout


def screenshot(chromium: str, tmp_path: Path, url: str, name: str, height: int) -> Path:  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    shot = browse(
        chromium,
        tmp_path / "profile",
        url,
        f"--window-size=1440,{height}",
        f"--screenshot={path}",
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_lines(shot.stderr) == []
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000  # a blank page compresses to a few KB
    return path


def element(dom: str, tag: str, ident: str) -> str:
    return re.search(rf'<{tag} id="{ident}".*?</{tag}>', dom, re.S).group(0)


def test_overview_shows_every_run_with_its_zone_bar(chromium, site, tmp_path):  # noqa: F811
    backend, url = site
    dom = dump(chromium, tmp_path, f"{url}/?token={ADMIN}")
    table = element(dom, "table", "runs")
    rows = re.findall(r'<tr data-run="([^"]+)">(.*?)</tr>', table, re.S)
    assert [name for name, _ in rows] == sorted(RUNS)
    for _, row in rows:
        assert row.count('class="zone-bar"') == 1
        shares = re.findall(r'class="zone-seg zone-\w+" style="width:([0-9.]+)%"', row)
        assert 2 <= len(shares) <= 4 and abs(sum(map(float, shares)) - 100) < 0.1
        assert "s ago" in row or "min ago" in row  # last update
    shot = screenshot(chromium, tmp_path, f"{url}/?token={ADMIN}", f"overview-{backend}.png", 1100)
    print(f"overview screenshot: {shot}")

    # The filters travel in the address; a name without `*` is a prefix.
    filtered = dump(chromium, tmp_path, f"{url}/?dataset=arith&name=uniform-s&token={ADMIN}")
    names = re.findall(r'<tr data-run="([^"]+)">', element(filtered, "table", "runs"))
    assert names == [f"uniform-s{i}" for i in range(ARMS["uniform"])]


def test_compare_draws_one_series_per_run_in_each_chart(chromium, site, tmp_path):  # noqa: F811
    backend, url = site
    page = f"{url}/compare?runs={','.join(COMPARED)}&token={ADMIN}"
    dom = dump(chromium, tmp_path, page)
    for chart in LINE_CHARTS:
        series = re.findall(r'<path class="series" data-run="([^"]+)"', element(dom, "svg", chart))
        assert sorted(series) == sorted(COMPARED), chart
    histograms = element(dom, "svg", "histograms")
    groups = re.findall(r'<g class="series" data-run="([^"]+)"', histograms)
    assert sorted(groups) == sorted(COMPARED)
    assert histograms.count("<rect") == 3 * 20  # 20 bins per run
    assert element(dom, "table", "summary").count('class="zone-bar"') == 3
    differences = element(dom, "table", "differences")
    assert differences.count('<td class="prompt"') == 20  # the top 20 by default
    assert "What is " in differences and "Reply with the number only." in differences
    shot = screenshot(chromium, tmp_path, page, f"compare-{backend}.png", 1900)
    print(f"compare screenshot: {shot}")


def test_run_tables_show_prompts_and_link_to_the_problem_page(chromium, site, tmp_path):  # noqa: F811
    backend, url = site
    dom = dump(chromium, tmp_path, f"{url}/runs/paced-s0?token={ADMIN}")
    for table in ("frontier", "mastered"):
        rows = re.findall(
            r'<a href="/runs/paced-s0/problems/q(\d{5})">q\d{5}</a></td>'
            r'<td class="prompt" title="([^"]*)">([^<]*)</td><td class="answer"[^>]*>(\d+)</td>',
            element(dom, "table", table),
        )
        assert len(rows) == 10, table
        for i, title, text, answer in rows:
            assert title == text == prompt_of(int(i)) and answer == str(3 * int(i) + 1)
    screenshot(chromium, tmp_path, f"{url}/runs/paced-s0?token={ADMIN}", f"run-{backend}.png", 1600)


def test_problem_page_shows_its_text_and_outcomes_over_steps(chromium, site, tmp_path):  # noqa: F811
    backend, url = site
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        overview = http.get("/v1/runs/paced-s0/overview").json()
        shown = overview["top_frontier"] + overview["recently_mastered"]
        problem = max(shown, key=lambda row: row["attempts"])["problem_id"]  # seen most often
        history = http.get(f"/v1/runs/paced-s0/problem-history/{problem}").json()
    i = int(problem[1:])
    page = f"{url}/runs/paced-s0/problems/{problem}?token={ADMIN}"
    dom = dump(chromium, tmp_path, page)
    assert element(dom, "pre", "prompt") == f'<pre id="prompt" class="text">{prompt_of(i)}</pre>'
    assert f">{3 * i + 1}</pre>" in element(dom, "pre", "answer")
    steps = len(history["steps"])
    assert steps >= 1
    assert element(dom, "svg", "pass-rates").count('class="position"') == steps
    assert element(dom, "table", "steps").count("<tr>") == 1 + steps
    screenshot(chromium, tmp_path, page, f"problem-{backend}.png", 900)


def test_compare_refuses_runs_of_different_datasets_and_says_why(chromium, site, tmp_path):  # noqa: F811
    _, url = site
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        http.post("/v1/datasets", json={"name": "other"}).raise_for_status()
        problems = [{"id": "x1", "prompt": "1+1="}]
        http.post("/v1/datasets/other/problems", json={"problems": problems}).raise_for_status()
        http.post("/v1/runs", json={"name": "zz-other", "dataset": "other"}).raise_for_status()
    done = browse(
        chromium,
        tmp_path / "profile",
        f"{url}/compare?runs=paced-s0,zz-other&token={ADMIN}",
        "--dump-dom",
    )
    assert 'data-state="error"' in done.stdout
    status = re.search(r'<p id="status"[^>]*>([^<]*)</p>', done.stdout).group(1)
    assert "422" in status and "different datasets" in status and "zz-other: other" in status
