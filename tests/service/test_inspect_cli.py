"""`paced runs / show / import / export` against a real `paced serve` process."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from service.spawn import ServiceProcess, child_environment

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "cli-admin-token"
N_PROBLEMS = 2500


@pytest.fixture
def server(database_url: str, tmp_path: Path):
    """A served, token-protected service on the test database (SQLite and PostgreSQL)."""
    settings = {"PACED_ADMIN_TOKEN": ADMIN}
    with ServiceProcess(workdir=tmp_path, database_url=database_url, settings=settings) as served:
        yield served.url


def paced(url: str, *args: str, token: str | None = ADMIN) -> subprocess.CompletedProcess:
    env = child_environment({}, inherit_settings=False)
    command = [sys.executable, "-m", "trainer_client.cli.main", *args, "--url", url]
    if token:
        command += ["--token", token]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def write_jsonl(path: Path, n: int) -> list[str]:
    ids = [f"item-{i}" for i in range(n)]
    with path.open("w") as handle:
        for i, pid in enumerate(ids):
            handle.write(json.dumps({"id": pid, "prompt": f"{i}+1=", "answer": str(i + 1)}) + "\n")
    return ids


def test_import_runs_show_export_round_trip(server: str, tmp_path: Path):
    ids = write_jsonl(tmp_path / "problems.jsonl", N_PROBLEMS)
    done = paced(
        server, "import", "arith", str(tmp_path / "problems.jsonl"), "--batch-size", "1000"
    )
    assert done.returncode == 0, done.stderr
    assert f"{N_PROBLEMS} inserted, 0 updated" in done.stdout
    assert f"{N_PROBLEMS}/{N_PROBLEMS}" in done.stderr  # the progress bar reached the end

    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server, headers=admin, timeout=30) as http:
        assert http.get("/v1/datasets/arith").json()["problem_count"] == N_PROBLEMS
        http.post("/v1/runs", json={"name": "cli-run", "dataset": "arith"}).raise_for_status()
        outcomes = [
            {"problem_id": pid, "attempts": 8, "successes": i % 9, "step": i % 4}
            for i, pid in enumerate(ids[:2000])
        ]
        http.post("/v1/runs/cli-run/outcomes", json={"outcomes": outcomes}).raise_for_status()
        report = http.get("/v1/runs/cli-run/difficulty", params={"bins": 4}).json()
        api_weights = []
        cursor = None
        while True:
            page = http.post("/v1/runs/cli-run/weights", json={"cursor": cursor, "limit": 999})
            body = page.json()
            api_weights += body["items"]
            cursor = body["next_cursor"]
            if not cursor:
                break

    listed = paced(server, "runs")
    assert listed.returncode == 0, listed.stderr
    header, rule, row = listed.stdout.splitlines()
    assert header.split()[:3] == ["RUN", "DATASET", "STEP"]
    assert row.split()[:3] == ["cli-run", "arith", "3"]

    shown = paced(server, "show", "cli-run", "--bins", "4")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    for zone, count in report["zones"].items():
        (line,) = [ln for ln in lines if ln.split()[:1] == [zone]]
        assert int(line.split()[1]) == count
    bins = [ln for ln in lines if ln.strip().startswith("[")]
    assert [int(ln.split()[2]) for ln in bins] == report["histogram"]["counts"]
    assert max(ln.count("█") for ln in bins) == 40  # the fullest bin spans the whole bar

    expected = {w["problem_id"]: w for w in api_weights}
    assert len(expected) == N_PROBLEMS

    exported = paced(server, "export", "cli-run", "--format", "csv", "-o", str(tmp_path / "w.csv"))
    assert exported.returncode == 0, exported.stderr
    with (tmp_path / "w.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["problem_id"]: float(r["weight"]) for r in rows} == {
        k: v["weight"] for k, v in expected.items()
    }
    assert {r["pass_rate"] for r in rows if r["problem_id"] == ids[-1]} == {""}  # unseen

    as_jsonl = paced(server, "export", "cli-run", "--format", "jsonl")
    assert as_jsonl.returncode == 0, as_jsonl.stderr
    items = [json.loads(line) for line in as_jsonl.stdout.splitlines()]
    assert {i["problem_id"]: i for i in items} == expected

    parquet_path = tmp_path / "w.parquet"
    as_parquet = paced(server, "export", "cli-run", "--format", "parquet", "-o", str(parquet_path))
    assert as_parquet.returncode == 0, as_parquet.stderr
    table = pq.read_table(parquet_path).to_pylist()
    assert {r["problem_id"]: r for r in table} == expected


def test_errors_are_one_line_and_exit_status_one(server: str, tmp_path: Path):
    missing = paced(server, "show", "no-such-run")
    assert missing.returncode == 1
    assert "no-such-run" in missing.stderr and "Traceback" not in missing.stderr

    unauthorised = paced(server, "runs", token=None)
    assert unauthorised.returncode == 1 and "Traceback" not in unauthorised.stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x"}\nnot json\n')
    failed = paced(server, "import", "ds", str(bad), "--quiet")
    assert failed.returncode == 1
    assert "line 2" in failed.stderr

    no_file = paced(server, "export", "no-such-run", "--format", "parquet")
    assert no_file.returncode == 1 and "--output" in no_file.stderr


def test_the_service_never_imports_the_client():
    """One package boundary: the service's modules import no trainer_client module, and the
    `paced` command line loads neither the service app nor torch to parse its arguments."""
    service_dir = ROOT / "service"
    offenders = [
        str(path.relative_to(ROOT))
        for path in service_dir.rglob("*.py")
        if re.search(r"^\s*(from|import)\s+trainer_client", path.read_text(), re.M)
    ]
    assert offenders == []
    probe = (
        "import sys; from trainer_client.cli.main import build_parser; build_parser(); "
        "print('torch' in sys.modules, 'service.app' in sys.modules)"
    )
    env = child_environment({}, inherit_settings=False)
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"], done.stderr
