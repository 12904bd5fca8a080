"""`paced train --engine vllm`: the loop rolling out with an in-process vLLM engine on the
built-in task (cut down; see conftest.task_config). One engine start, inside the command."""

from __future__ import annotations

import json
import time

import pytest

from tests.vllm.conftest import task_config
from trainer_client.trainer.local_service import local_service

pytestmark = pytest.mark.vllm


def test_paced_train_rolls_out_with_in_process_vllm(task, tmp_path, monkeypatch, capsys):
    from trainer_client.cli import main
    from trainer_client.task import pipeline

    task_dir, bundle = task
    monkeypatch.setattr(pipeline, "quick_config", task_config)  # find the cut-down build
    workdir = tmp_path / "run"
    with local_service(tmp_path / "service") as service_url:
        argv = ["train", "--quick", "--task-dir", str(task_dir), "--workdir", str(workdir)]
        argv += ["--url", service_url, "--run", "vllm-inproc", "--steps", "3"]
        argv += ["--batch-size", "4", "--k", "2", "--refresh-every", "2", "--refresh-size", "4"]
        argv += ["--engine", "vllm"]
        started = time.perf_counter()
        assert main(argv) == 0
        wall = time.perf_counter() - started
    output = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n$ paced {' '.join(argv)}\n{output}(wall {wall:.1f} s, engine start included)")
    summary = json.loads((workdir / "summary.json").read_text())
    pool = len(bundle.pool)
    # K=2 rollouts per problem: the initial and the final full-pool estimates, and each
    # refresh (scheduled, or after a 409 when nothing was eligible) re-rolls up to 4.
    refreshed = min(4, pool) * summary["refreshes"]
    assert summary["refreshes"] >= 1
    assert summary["rollouts_spent"] == 2 * (2 * pool + refreshed)
    export = workdir / "vllm" / "vllm-model"
    assert json.loads((export / "paced_vllm_export.json").read_text())["pad_factor"] == 2
    assert (workdir / "vllm" / "weight-sync" / "model.safetensors").exists()
