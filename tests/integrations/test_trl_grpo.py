"""TRL GRPOTrainer with the PACED sampler and reward wrapper (real trl, tiny CPU model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations import grpo_job
from tests.transports import DropFirstOutcomesResponse
from trainer_client.client import PacedClient
from trainer_client.tasks import toy

STEPS = 3
GENERATION_BATCH = grpo_job.PER_DEVICE_BATCH  # one process, steps_per_generation = 1
JOB = Path(grpo_job.__file__)
REPO_ROOT = JOB.parents[2]


def total_attempts(paced: PacedClient, run: str) -> int:
    return sum(int(item.attempts) for item in paced.iter_weights(run))


def train(url: str, run: str, tmp_path, *, client: PacedClient | None = None, seed: int = 0):
    grpo_job.setup(url, run, toy.problems(24))
    with client or PacedClient(url) as paced:
        return grpo_job.run_grpo(paced, run, STEPS, seed, str(tmp_path / run))


def test_grpo_trains_only_on_paced_prompts_and_records_every_completion(service_url, tmp_path):
    trainer, curriculum, recorder = train(service_url, "grpo-a", tmp_path)
    draws = curriculum.sampler.draws.history
    assert trainer.state.global_step == STEPS
    # The dataloader prefetches one generation batch ahead: at most one extra draw.
    assert STEPS <= len(draws) <= STEPS + 1
    prompt_of = {row["problem_id"]: row["prompt"] for row in toy.problems(24)}
    for step, call in enumerate(recorder.calls):
        assert call["step"] == step
        # RepeatSampler's layout: each drawn prompt num_generations times, in draw order.
        expected = [pid for pid in draws[step] for _ in range(grpo_job.NUM_GENERATIONS)]
        assert call["problem_ids"] == expected
        assert call["prompts"] == [prompt_of[pid] for pid in expected]
    with PacedClient(service_url) as paced:
        assert total_attempts(paced, "grpo-a") == STEPS * GENERATION_BATCH
        assert paced.get_run("grpo-a").step == STEPS - 1


def test_the_same_seed_on_a_fresh_service_draws_the_same_batches(
    service_url, fresh_service, tmp_path
):
    _, first, _ = train(service_url, "grpo-seeded", tmp_path)
    with fresh_service() as url:
        _, second, _ = train(url, "grpo-seeded", tmp_path / "again")
    assert second.sampler.draws.history == first.sampler.draws.history


def test_a_dropped_response_and_its_retry_or_a_duplicate_call_count_once(service_url, tmp_path):
    transport = DropFirstOutcomesResponse()
    client = PacedClient(service_url, transport=transport, backoff=None)
    trainer, curriculum, recorder = train(service_url, "grpo-drop", tmp_path, client=client)
    # The lost answer was retried with the same key; the service applied it once.
    assert transport.outcome_keys[0] == transport.outcome_keys[1]
    assert len(transport.outcome_keys) == STEPS + 1
    with PacedClient(service_url) as paced:
        assert total_attempts(paced, "grpo-drop") == STEPS * GENERATION_BATCH
        # TRL calling the reward twice for the same step (a duplicate) counts once too.
        reward = trainer.reward_funcs[0]
        last = recorder.calls[-1]
        answer_of = {row["problem_id"]: row["answer"] for row in toy.problems(24)}
        answers = [answer_of[p] for p in last["problem_ids"]]
        kwargs = {"problem_id": last["problem_ids"], "answer": answers}
        reward.curriculum.client = paced
        for _ in range(2):
            returned = reward(
                prompts=last["prompts"], completions=answers, trainer_state=trainer.state, **kwargs
            )
            # Every completion passes (raw reward 1): weight_rewards returns each problem's
            # loss scale from its draw.
            assert returned == [curriculum.scales[p] for p in last["problem_ids"]]
        assert total_attempts(paced, "grpo-drop") == (STEPS + 1) * GENERATION_BATCH


@pytest.mark.timeout(300)
def test_torchrun_two_ranks_draw_identical_prompts_and_record_each_completion_once(
    service_url, tmp_path
):
    out = tmp_path / "ranks.json"
    # --standalone: a free rendezvous port (the default 29500 may be taken on a shared box).
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    command += [str(JOB), service_url, "grpo-ranks", str(out), "--steps", str(STEPS)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    ranks = [json.loads((tmp_path / f"ranks.rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["draws"] == ranks[1]["draws"]  # identical prompts every step
    draws = ranks[0]["draws"]
    per_rank = grpo_job.PER_DEVICE_BATCH
    for step in range(STEPS):
        # Accelerate gives rank r the r-th slice of the step's generation batch.
        expected = [pid for pid in draws[step] for _ in range(grpo_job.NUM_GENERATIONS)]
        got = [ranks[r]["calls"][step]["problem_ids"] for r in (0, 1)]
        assert got[0] + got[1] == expected and len(got[0]) == per_rank
    with PacedClient(service_url) as paced:
        assert total_attempts(paced, "grpo-ranks") == STEPS * per_rank * 2
