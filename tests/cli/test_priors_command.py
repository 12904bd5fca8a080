"""`paced priors` through the installed console script, against a real `paced serve` (SQLite
and PostgreSQL): profiles as CSV (another run's export), JSONL and parquet, --from-run, and
one-line errors for a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.spawn import ServiceProcess
from tests.cli.test_run_commands import paced
from trainer_client import PacedClient
from trainer_client.cli.priors import profile_items


@pytest.fixture
def server(database_url: str, tmp_path: Path):
    with ServiceProcess(workdir=tmp_path, database_url=database_url) as served:
        with PacedClient(served.url) as client:
            client.create_dataset("arith")
            client.upsert_problems(
                "arith", [{"id": f"q{i}", "prompt": f"{i}+{i}"} for i in range(4)]
            )
            client.create_run("base", "arith")
            client.create_run("student", "arith")
            client.post_outcomes(
                "base",
                [
                    {"problem_id": "q0", "attempts": 16, "successes": 4, "step": 2},
                    {"problem_id": "q1", "attempts": 8, "successes": 8, "step": 2},
                ],
            )
        yield served.url


def prior_of(url: str, run: str) -> dict[str, tuple[float, float]]:
    with PacedClient(url) as client:
        return {
            w.problem_id: (w.prior_attempts, w.prior_successes)
            for w in client.iter_weights(run)
            if w.prior_attempts
        }


def test_an_export_is_a_profile_and_so_are_jsonl_and_parquet(server, tmp_path):
    exported = tmp_path / "base.csv"
    assert paced(server, "export", "base", "-o", str(exported)).returncode == 0
    done = paced(server, "priors", "student", str(exported), "--max-pseudo-attempts", "4")
    assert done.returncode == 0, done.stderr
    assert "2 priors set, 2 problems with a prior" in done.stdout
    # q0: 4 of 16 at most 4 pseudo-attempts; q1: 8 of 8; q2, q3 unseen in the export: skipped
    assert prior_of(server, "student") == {"q0": (4.0, 1.0), "q1": (4.0, 4.0)}

    profile = tmp_path / "ref.jsonl"
    profile.write_text(json.dumps({"problem_id": "q2", "pass_rate": 0.5}) + "\n\n")
    done = paced(server, "priors", "student", str(profile), "--pseudo-attempts", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"updated": 1, "problems_with_prior": 3}

    table = pa.table({"problem_id": ["q3"], "pass_rate": [0.25], "pseudo_attempts": [8.0]})
    pq.write_table(table, tmp_path / "ref.parquet")
    done = paced(server, "priors", "student", str(tmp_path / "ref.parquet"), "--replace")
    assert done.returncode == 0, done.stderr
    assert prior_of(server, "student") == {"q3": (8.0, 2.0)}


def test_from_run_and_errors(server, tmp_path):
    done = paced(server, "priors", "student", "--from-run", "base", "--max-pseudo-attempts", "8")
    assert done.returncode == 0, done.stderr
    assert prior_of(server, "student") == {"q0": (8.0, 2.0), "q1": (8.0, 8.0)}
    missing = paced(server, "priors", "student", "--from-run", "nope")
    assert (
        missing.returncode == 1 and "nope" in missing.stderr and "Traceback" not in missing.stderr
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("problem_id,pass_rate\nq0,1.5\n")
    refused = paced(server, "priors", "student", str(bad), "--pseudo-attempts", "1")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("x")
    assert "--format" in paced(server, "priors", "student", str(unknown)).stderr


def test_profile_columns():
    rows = [
        {"problem_id": "a", "pass_rate": "0.5", "pseudo_attempts": "", "attempts": "12"},
        {"problem_id": "b", "pass_rate": "", "attempts": "0"},  # unseen in an export
        {"problem_id": 7, "pass_rate": 1, "pseudo_attempts": 3},
        {"problem_id": "c", "pass_rate": 0.0, "attempts": 0},
    ]
    assert profile_items(rows, pseudo_attempts=2.0) == [
        {"problem_id": "a", "pass_rate": 0.5, "pseudo_attempts": 12.0},
        {"problem_id": "7", "pass_rate": 1.0, "pseudo_attempts": 3.0},
        {"problem_id": "c", "pass_rate": 0.0, "pseudo_attempts": 2.0},
    ]
    with pytest.raises(ValueError, match="pseudo-attempts"):
        profile_items([{"problem_id": "a", "pass_rate": 0.5}])
