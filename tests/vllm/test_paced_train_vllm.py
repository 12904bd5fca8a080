"""`paced train --engine vllm`: the loop rolling out with an in-process vLLM engine on the
built-in task (cut down; see conftest.task_config). One engine start, inside the command."""

from __future__ import annotations

import json

import pytest

from tests.vllm.conftest import problems_rolled_out, run_train_cli, task_config
from trainer_client.local.service import local_service

pytestmark = pytest.mark.vllm


def test_paced_train_rolls_out_with_in_process_vllm(task, tmp_path, monkeypatch, capsys):
    from trainer_client.tasks.arithmetic import build

    task_dir, bundle = task
    monkeypatch.setattr(build, "quick_config", task_config)  # find the cut-down build
    workdir = tmp_path / "run"
    with local_service(tmp_path / "service") as service_url:
        argv = ["train", "--quick", "--task-dir", str(task_dir), "--workdir", str(workdir)]
        argv += ["--url", service_url, "--run", "vllm-inproc", "--steps", "3"]
        argv += ["--batch-size", "4", "--k", "2", "--refresh-every", "2", "--refresh-size", "4"]
        argv += ["--engine", "vllm"]
        summary = run_train_cli(argv, workdir, capsys, note=", engine start included")
    assert summary["rollouts_spent"] == 2 * problems_rolled_out(summary, len(bundle.pool))
    export = workdir / "vllm" / "vllm-model"
    assert json.loads((export / "paced_vllm_export.json").read_text())["pad_factor"] == 2
    assert (workdir / "vllm" / "weight-sync" / "model.safetensors").exists()
