"""verl parquet rows -> a paced dataset, and the package's light import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.verl.rollouts import verl_row, write_parquet
from trainer_client.client import PacedClient
from trainer_client.integrations.verl.convert import (
    main,
    problem_id_of,
    upload_verl_parquet,
    verl_row_to_problem,
    verl_rows_to_problems,
)

pytestmark = pytest.mark.verl


def test_a_row_becomes_a_problem_under_its_extra_info_id():
    problem = verl_row_to_problem(verl_row(9))
    assert problem["id"] == "9"
    assert problem["prompt"] == "2+1="  # the last user message
    assert problem["answer"] == "3"
    assert problem["metadata"]["data_source"] == "openai/gsm8k"
    assert problem["metadata"]["messages"][0]["role"] == "system"
    assert problem["metadata"]["split"] == "train" and problem["metadata"]["ability"] == "math"


def test_problem_id_wins_over_index_and_a_row_without_either_is_refused():
    assert problem_id_of({"index": 3, "problem_id": "gsm8k/17"}) == "gsm8k/17"
    assert problem_id_of({"index": 0}) == "0"
    with pytest.raises(ValueError, match="extra_info.problem_id or extra_info.index"):
        problem_id_of({"split": "train"})
    with pytest.raises(ValueError, match="share the problem id '4'"):
        verl_rows_to_problems([verl_row(4), verl_row(4)])


def test_non_string_ground_truth_is_kept_as_json():
    row = verl_row(1)
    row["reward_model"]["ground_truth"] = {"target": [1, 2]}
    assert json.loads(verl_row_to_problem(row)["answer"]) == {"target": [1, 2]}


def test_upload_creates_the_dataset_and_run_and_is_harmless_twice(paced_url, tmp_path, capsys):
    path = write_parquet(tmp_path / "train.parquet", [verl_row(i) for i in range(5)])
    first = upload_verl_parquet(paced_url, "conv-ds", [path], run="conv-run")
    assert (first.problems, first.inserted, first.updated) == (5, 5, 0)
    argv = [str(path), "--url", paced_url, "--dataset", "conv-ds", "--run", "conv-run"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {
        "dataset": "conv-ds",
        "problems": 5,
        "inserted": 0,
        "updated": 5,
        "run": "conv-run",
    }
    with PacedClient(paced_url) as paced:
        assert paced.get_run("conv-run").dataset == "conv-ds"
        assert paced.get_problem("conv-ds", "3").prompt == "3+0="


def test_importing_the_package_imports_neither_verl_nor_ray_nor_torch():
    code = (
        "import sys, trainer_client.integrations.verl as v\n"
        "assert v.problem_id_of({'index': 1}) == '1'\n"
        "print(sorted(m for m in ('verl', 'ray', 'torch', 'transfer_queue') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
