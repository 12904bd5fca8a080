"""TRL DistillationTrainer (PACED sampler, loss weights, estimation callback) and
SFTTrainer (PACED sampler) on tiny CPU models."""

from __future__ import annotations

import pytest
from datasets import Dataset
from trl import DistillationConfig, DistillationTrainer, SFTConfig, SFTTrainer

from tests.integrations import grpo_job
from trainer_client.client import PacedClient
from trainer_client.integrations.trl import PacedCurriculum, PacedDistillationTrainer
from trainer_client.integrations.trl_distillation import _row
from trainer_client.tasks import toy

# TRL's own loss, as the override's parent computes it.
DistillationTrainer_compute_loss = DistillationTrainer._compute_loss

STEPS = 3
COMMON = {
    "max_steps": STEPS,
    "learning_rate": 1e-3,
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": "none",
    "use_cpu": True,
    "disable_tqdm": True,
}


def test_distillation_with_paced_runs_weights_samples_and_moves_the_zones(service_url, tmp_path):
    rows = toy.problems(24)
    grpo_job.setup(service_url, "distill", rows)
    tokenizer = toy.build_tokenizer()
    with PacedClient(service_url) as paced:
        before = paced.difficulty("distill").zones
        curriculum = PacedCurriculum(paced, "distill", mode="uniform")
        estimation = curriculum.estimation_callback(toy.passes, k=4, limit=6, max_new_tokens=3)
        trainer = PacedDistillationTrainer(
            model=toy.build_model(tokenizer),
            teacher_model=toy.build_model(tokenizer, hidden=64, seed=1),
            args=DistillationConfig(
                output_dir=str(tmp_path),
                per_device_train_batch_size=4,
                beta=1.0,
                max_completion_length=3,
                **COMMON,
            ),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=[estimation],
        )
        curriculum.attach(trainer)
        trainer.train()
        after = paced.difficulty("distill").zones

    assert trainer.state.global_step == STEPS
    draws = curriculum.sampler.draws.history
    assert len(draws) >= STEPS and all(len(d) == 4 for d in draws)
    # Estimation before training and after each step: 1 + STEPS claims of 6 problems x 4.
    assert len(estimation.posted) == 1 + STEPS
    assert sum(o["attempts"] for call in estimation.posted for o in call) == (1 + STEPS) * 6 * 4
    assert before.unseen == 24 and after.unseen == 24 - (1 + STEPS) * 6
    assert after.intractable + after.frontier + after.mastered == (1 + STEPS) * 6
    # Uniform draws carry w/mean(w) loss weights: once problems are estimated, the trainer's
    # per-sample scales are not all 1 (fill items weigh 0).
    assert any(scale != 1.0 for scale in curriculum.scales.values())


def test_sft_trainer_trains_on_paced_draws(service_url, tmp_path):
    rows = toy.problems(24)
    grpo_job.setup(service_url, "sft", rows)
    sft_rows = [
        {"problem_id": r["problem_id"], "prompt": r["prompt"], "completion": r["answer"]}
        for r in rows
    ]
    tokenizer = toy.build_tokenizer()
    seen: list[list[str]] = []
    with PacedClient(service_url) as paced:
        curriculum = PacedCurriculum(paced, "sft", fill="unseen_then_uniform")
        trainer = SFTTrainer(
            model=toy.build_model(tokenizer),
            args=SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, **COMMON),
            train_dataset=Dataset.from_list(sft_rows),
            processing_class=tokenizer,
        )
        curriculum.attach(trainer)
        original = trainer.compute_loss

        def recording_loss(model, inputs, *args, **kwargs):
            seen.append(tokenizer.batch_decode(inputs["input_ids"], skip_special_tokens=True))
            return original(model, inputs, *args, **kwargs)

        trainer.compute_loss = recording_loss
        trainer.train()
    draws = curriculum.sampler.draws.history
    assert trainer.state.global_step == STEPS and len(seen) == STEPS
    text_of = {r["problem_id"]: r["prompt"] + r["answer"] for r in rows}
    for step, texts in enumerate(seen):  # the micro-batch of step t is exactly draw t
        assert texts == [text_of[pid] for pid in draws[step]]


def test_the_weighted_distillation_loss_is_the_scaled_sum_of_per_sample_losses(
    service_url, tmp_path
):
    """With all scales 1 the override gives TRL's fused loss; otherwise sum_i s_i loss_i."""
    rows = toy.problems(8)
    grpo_job.setup(service_url, "distill-loss", rows)
    tokenizer = toy.build_tokenizer()
    trainer = PacedDistillationTrainer(
        model=toy.build_model(tokenizer),
        teacher_model=toy.build_model(tokenizer, hidden=64, seed=1),
        args=DistillationConfig(
            output_dir=str(tmp_path),
            per_device_train_batch_size=4,
            max_completion_length=3,
            **COMMON,
        ),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.paced_scales = {
        r["problem_id"]: s for r, s in zip(rows, [0.0, 0.5, 1.5, 2.0], strict=False)
    }
    inputs = trainer._generate_and_score_completions(rows[:4])
    assert inputs["paced_scale"].tolist() == [0.0, 0.5, 1.5, 2.0]
    student = trainer.accelerator.unwrap_model(trainer.model)
    n_items = inputs["num_items_in_batch"].clamp(min=1.0)
    fused, _, _ = DistillationTrainer_compute_loss(trainer, student, inputs, n_items)
    per_row = [
        DistillationTrainer_compute_loss(trainer, student, _row(inputs, i, 4), n_items)[0]
        for i in range(4)
    ]
    assert float(sum(per_row)) == pytest.approx(float(fused), rel=1e-5)
    weighted, _, _ = trainer._compute_loss(student, inputs, n_items)
    expected = sum(s * loss for s, loss in zip([0.0, 0.5, 1.5, 2.0], per_row, strict=True))
    assert float(weighted) == pytest.approx(float(expected), rel=1e-5)
    weighted.backward()  # a graph to train on
    assert any(p.grad is not None for p in student.parameters())
