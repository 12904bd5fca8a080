"""TRL's GRPOTrainer with the zero-variance gate (real trl, tiny CPU model, live service).

A third of the problems always score 0, a third always 1: their groups have no variance
and the gate must refill them; the rest score by the completion's characters (variance in
most groups, not all). GRPOTrainer trains with the gate, and every group it trains on has
non-zero reward variance; the gate's metrics sit in TRL's logs next to its own.
"""

from __future__ import annotations

import torch
from datasets import Dataset
from trl import GRPOTrainer

from tests.integrations import grpo_job
from trainer_client.client import PacedClient
from trainer_client.integrations.trl import PacedCurriculum
from trainer_client.tasks import toy

STEPS = 4
PROMPTS = grpo_job.PER_DEVICE_BATCH // grpo_job.NUM_GENERATIONS  # groups per step
MAX_GROUPS = 12
ROWS = toy.problems(24)
HOPELESS = {row["problem_id"] for row in ROWS[0::3]}
SOLVED = {row["problem_id"] for row in ROWS[1::3]}


def scripted_reward(completions, problem_id, **_):
    """0 or 1 by problem for two thirds of them; by the completion's characters for the rest."""
    rewards = []
    for completion, pid in zip(completions, problem_id, strict=True):
        if pid in HOPELESS or pid in SOLVED:
            rewards.append(float(pid in SOLVED))
        else:
            rewards.append(float(sum(map(ord, completion)) % 2))
    return rewards


class TrainedBatches:
    """What the loss sees: the gated generation batches, before TRL shuffles and splits them."""

    def __init__(self, trainer) -> None:
        self.outputs: list[dict] = []
        self.inner = trainer._generate_and_score_completions
        trainer._generate_and_score_completions = self

    def __call__(self, inputs):
        output = self.inner(inputs)
        self.outputs.append(output)
        return output


def train_with_gate(url: str, run: str, workdir: str):
    with PacedClient(url) as paced:
        paced.create_dataset(f"{run}-sums")
        problems = [{"id": r["problem_id"], "prompt": r["prompt"]} for r in ROWS]
        paced.upsert_problems(f"{run}-sums", problems)
        # window "all": the counts below are every outcome posted, not the newest round's.
        paced.create_run(run, f"{run}-sums", estimator={"kind": "posterior", "window": "all"})
    tokenizer = toy.build_tokenizer()
    args = grpo_job.grpo_config(workdir, STEPS, seed=0)
    client = PacedClient(url)
    curriculum = PacedCurriculum(client, run, seed=0)
    trainer = GRPOTrainer(
        model=toy.build_model(tokenizer, seed=0),
        reward_funcs=curriculum.reward(scripted_reward),
        args=args,
        train_dataset=Dataset.from_list(ROWS),
        processing_class=tokenizer,
    )
    curriculum.attach(trainer)
    gate = curriculum.gate(trainer, max_groups=MAX_GROUPS)
    trained = TrainedBatches(trainer)
    trainer.train()
    client.close()
    return trainer, gate, trained


def test_grpo_trains_only_on_groups_with_reward_variance(service_url, tmp_path):
    trainer, gate, trained = train_with_gate(service_url, "gated", str(tmp_path / "gated"))
    assert trainer.state.global_step == STEPS
    assert len(gate.results) == len(trained.outputs) == STEPS
    g = grpo_job.NUM_GENERATIONS
    for output, result in zip(trained.outputs, gate.results, strict=True):
        # The batch TRL trains on: the usual size, and in every group some advantage is not 0
        # (scale_rewards="none": advantage = reward - group mean, all 0 iff no variance).
        advantages = output["advantages"].view(-1, g)
        assert advantages.shape == (PROMPTS, g)
        assert bool((advantages.abs() > 0).any(dim=1).all())
        assert output["completion_ids"].shape[0] == PROMPTS * g
        assert int(output["num_items_in_batch"]) == int(output["completion_mask"].sum())
        stats = result.stats
        assert stats.short == 0 and stats.kept == PROMPTS and stats.generated <= MAX_GROUPS
        assert len(result.seen) == len(set(result.seen))  # a refill repeats nothing
        assert all(len(set(g.rewards)) > 1 for g in result.kept)
        assert all(pid not in HOPELESS | SOLVED for pid in (g.problem_id for g in result.kept))
    assert sum(r.stats.refills for r in gate.results) > 0
    assert sum(r.stats.zero_variance for r in gate.results) > 0
    print(
        f"TRL GRPO + gate: {STEPS} steps x {PROMPTS} groups trained, generated per step"
        f" {[r.stats.generated for r in gate.results]} (budget {MAX_GROUPS}), zero-variance"
        f" {[r.stats.zero_variance for r in gate.results]}, refills"
        f" {[r.stats.refills for r in gate.results]}"
    )


def test_the_gate_metrics_are_logged_with_trls_own(service_url, tmp_path):
    trainer, gate, _ = train_with_gate(service_url, "gated-logs", str(tmp_path / "logs"))
    logged = [entry for entry in trainer.state.log_history if "paced_gate/kept_groups" in entry]
    assert len(logged) == STEPS
    for entry, result in zip(logged, gate.results, strict=True):
        assert "frac_reward_zero_std" in entry and "reward" in entry  # TRL's, same record
        for name, value in result.stats.metrics().items():
            assert entry[name] == value
    # Every group rolled out (kept, dropped, refills) was posted once by PacedReward.
    with PacedClient(service_url) as paced:
        attempts = sum(int(w.attempts) for w in paced.iter_weights("gated-logs"))
    generated = sum(r.stats.generated for r in gate.results)
    # The dataloader may have drawn one batch ahead; only rolled-out groups are posted.
    assert attempts == generated * grpo_job.NUM_GENERATIONS
    assert not torch.isnan(
        torch.tensor([e["paced_gate/zero_variance_share"] for e in logged])
    ).any()
