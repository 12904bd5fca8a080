"""`paced runs / top / create-run / show` through the installed console script, against a
real `paced serve` (SQLite and PostgreSQL): quiet by default, -v shows HTTP, --json parses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.spawn import ServiceProcess, child_environment
from trainer_client import PacedClient

PACED = Path(sys.executable).parent / "paced"


@pytest.fixture
def server(database_url: str, tmp_path: Path):
    with ServiceProcess(workdir=tmp_path, database_url=database_url) as served:
        with PacedClient(served.url) as client:
            client.create_dataset("arith")
            client.upsert_problems(
                "arith",
                [
                    {"id": f"q{i}", "prompt": f"What is {i} +\n{i}?", "answer": str(2 * i)}
                    for i in range(6)
                ],
            )
            client.create_run("r1", "arith", estimator={"window": "latest"})
            client.post_outcomes(
                "r1",
                [{"problem_id": f"q{i}", "attempts": 8, "successes": k, "step": 3}
                 for i, k in enumerate([0, 1, 4, 7, 8, 4])],
            )  # fmt: skip
        yield served.url


def paced(url: str, *args: str) -> subprocess.CompletedProcess:
    env = child_environment({}, inherit_settings=False)
    command = [str(PACED), *args, "--url", url]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_the_console_script_is_installed():
    assert PACED.exists(), "the `paced` console script (pip install -e .) is missing"


def test_runs_shows_each_runs_progress_quietly(server):
    done = paced(server, "runs")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no httpx INFO lines without -v
    header, _, row = done.stdout.splitlines()[:3]
    assert header.split()[:7] == [
        "RUN",
        "DATASET",
        "STEP",
        "UNSEEN",
        "INTRACT.",
        "FRONTIER",
        "MASTERED",
    ]
    assert row.split()[:7] == ["r1", "arith", "3", "0", "1", "4", "1"]
    assert header.split()[8] == "ROLLOUTS" and row.split()[8] == str(6 * 8)  # 6 groups of 8
    verbose = subprocess.run(
        [str(PACED), "-v", "runs", "--url", server], capture_output=True, text=True, timeout=120
    )
    assert "HTTP Request: GET" in verbose.stderr


def test_json_output_is_the_api_answer(server):
    runs = json.loads(paced(server, "runs", "--json").stdout)
    assert [r["run"]["name"] for r in runs] == ["r1"]
    assert runs[0]["latest"]["zones"] == {
        "unseen": 0,
        "intractable": 1,
        "frontier": 4,
        "mastered": 1,
    }
    shown = json.loads(paced(server, "show", "r1", "--json").stdout)
    assert shown["difficulty"]["problems"] == 6


def test_top_lists_the_frontier_with_prompts_pass_rates_and_weights(server):
    done = paced(server, "top", "r1", "-n", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("run r1: 4 frontier problems of 6")
    rows = [line.split() for line in lines[3:]]
    # the two with the largest weight: 4 of 8 (q2 and q5, w = 0.25), prompts on one line
    assert sorted(r[0] for r in rows) == ["q2", "q5"]
    assert all(r[1] == "0.500" and r[2] == "0.2500" and r[3] == "4/8" for r in rows)
    assert "What is 2 + 2?" in done.stdout
    top = json.loads(paced(server, "top", "r1", "--json", "-n", "4").stdout)
    assert [t["weight"] for t in top] == sorted((t["weight"] for t in top), reverse=True)
    assert {t["problem_id"] for t in top} == {"q1", "q2", "q3", "q5"}


def test_create_run_and_its_errors(server):
    done = paced(server, "create-run", "r2", "--dataset", "arith", "--window", "all", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["estimator"]["window"] == "all"
    missing = paced(server, "create-run", "r3", "--dataset", "nope")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "nope" in missing.stderr
    assert paced(server, "top", "r1", "-n", "0").returncode == 1
