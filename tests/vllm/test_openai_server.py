"""OpenAIEngine against vLLM's real OpenAI-compatible server (CPU build), on the built-in task.

One server for the module: the task's warmed-up student (hidden 64, 4 heads: head size 16,
which vLLM's CPU kernels reject) exported by `paced vllm-export` as an equivalent padded
model, served on a free local port, stopped by signalling its process group at the end.
"""

from __future__ import annotations

import copy
import json
import re
import time

import httpx
import pytest

from service.spawn import free_port
from tests.vllm.conftest import (
    greedy_reference,
    problems_rolled_out,
    run_train_cli,
    task_config,
    torch,
)
from trainer_client.local.service import local_service
from trainer_client.local.vllm_server import vllm_server
from trainer_client.trainer.engines.openai_engine import (
    ContextTooLong,
    ModelNotServed,
    OpenAIEngine,
    RolloutServerError,
)
from trainer_client.trainer.engines.server_sync import VLLMServerSync

pytestmark = pytest.mark.vllm

NAME = "student"
MAX_NEW = 10


@pytest.fixture(scope="module")
def server(task, tmp_path_factory):
    from trainer_client.cli.main import main

    task_dir, _ = task
    export = tmp_path_factory.mktemp("export")
    argv = ["vllm-export", str(task_dir / "student_init"), str(export)]
    assert main(argv + ["--tokenizer", str(task_dir / "tokenizer")]) == 0
    assert json.loads((export / "paced_vllm_export.json").read_text())["pad_factor"] == 2
    started = time.perf_counter()
    log = tmp_path_factory.mktemp("logs") / "vllm-server.log"
    with vllm_server(export, served_model_name=NAME, log_path=log, max_model_len=128) as url:
        print(f"\nvLLM server healthy after {time.perf_counter() - started:.1f} s")
        yield url


@pytest.fixture(scope="module")
def prompts(task):
    _, bundle = task
    return [problem.prompt for problem in bundle.pool[:4]]


def test_k_completions_with_token_ids_reproducible_and_spaced(server, task, prompts):
    _, bundle = task
    engine = OpenAIEngine(server, NAME, max_concurrency=2)
    groups = engine.generate(prompts, 4, seed=3, max_new_tokens=MAX_NEW)
    assert [len(group) for group in groups] == [4] * len(prompts)
    for group in groups:
        for completion in group:
            assert 1 <= len(completion.token_ids) <= MAX_NEW
            decoded = bundle.tokenizer.decode(completion.token_ids, skip_special_tokens=True)
            assert decoded == completion.text
    assert engine.generate(prompts, 4, seed=3, max_new_tokens=MAX_NEW) == groups
    # One request per prompt, seeds spaced by k: the second copy of a prompt gets the
    # stream a lone request seeded base + k gets, not the first copy's.
    twice = engine.generate([prompts[0]] * 2, 4, seed=20, max_new_tokens=MAX_NEW)
    alone = engine.generate([prompts[0]], 4, seed=24, max_new_tokens=MAX_NEW)
    assert twice[1] == alone[0] and twice[0] != twice[1]


def test_served_outputs_follow_the_student_after_a_weight_sync(server, task, prompts, tmp_path):
    _, bundle = task
    student = bundle.student.eval()
    changed = copy.deepcopy(student)
    torch.manual_seed(5)
    with torch.no_grad():
        for parameter in changed.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)

    def reference(model):
        return greedy_reference(model, bundle.tokenizer, prompts, MAX_NEW, add_special_tokens=True)

    old_ref, new_ref = reference(student), reference(changed)
    assert old_ref != new_ref
    sync = VLLMServerSync(server, tmp_path / "sync")
    engine = OpenAIEngine(server, NAME, weight_sync=sync)

    def served():
        groups = engine.generate(prompts, 2, seed=0, max_new_tokens=MAX_NEW, temperature=0)
        return [group[0].token_ids for group in groups]

    # The served model is the padded export of the student: greedy equals transformers'.
    assert served() == old_ref
    engine.load_weights(changed)
    assert served() == new_ref
    engine.load_weights(student)
    assert served() == old_ref
    assert sync.syncs == 2


def test_clear_errors_for_wrong_model_long_context_and_no_server(server, prompts):
    with pytest.raises(ModelNotServed, match=r"does not serve model 'nope'.*'student'"):
        OpenAIEngine(server, "nope").generate(prompts[:1], 1, seed=0, max_new_tokens=4)
    with pytest.raises(ContextTooLong, match="max_new_tokens=8"):
        OpenAIEngine(server, NAME).generate(["1+1=" * 40], 1, seed=0, max_new_tokens=8)
    down = OpenAIEngine(f"http://127.0.0.1:{free_port()}", NAME)
    with pytest.raises(RolloutServerError, match="cannot reach the rollout server"):
        down.generate(prompts[:1], 1, seed=0, max_new_tokens=4)


def served_requests(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.findall(r"^vllm:request_success_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    return sum(float(value) for value in found)


def test_paced_train_rolls_out_through_the_server(server, task, tmp_path, monkeypatch, capsys):
    from trainer_client.tasks.arithmetic import build

    task_dir, bundle = task
    # `--quick` must find the module's cut-down build instead of training the quick task.
    monkeypatch.setattr(build, "quick_config", task_config)
    before = served_requests(server)
    workdir = tmp_path / "run"
    with local_service(tmp_path / "service") as service_url:
        argv = ["train", "--quick", "--task-dir", str(task_dir), "--workdir", str(workdir)]
        argv += ["--url", service_url, "--run", "vllm-e2e", "--steps", "3", "--batch-size", "4"]
        argv += ["--k", "2", "--refresh-every", "2", "--refresh-size", "4"]
        argv += ["--engine", "openai", "--base-url", server, "--served-model-name", NAME]
        summary = run_train_cli(argv, workdir, capsys)
    rolled_out = problems_rolled_out(summary, len(bundle.pool))
    assert summary["rollouts_spent"] == 2 * rolled_out  # K = 2
    assert served_requests(server) - before >= rolled_out  # one request per problem
    assert (workdir / "vllm-sync" / "model.safetensors").exists()  # the student was pushed
    assert summary["zones_after"] is not None
