"""The compared arms and the two experiment sizes (full and --quick).

Every arm shares one TrainConfig base: the same optimiser steps, batch size, learning rate,
K, estimation schedule (initial full-pool estimate, then `refresh_size` problems re-rolled
every `refresh_every` steps) and evaluation points. An arm changes only what the paper
compares: how problems are chosen and weighted, the estimator, and the loss. Nothing here
is tuned per arm.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from trainer_client.tasks.arithmetic.config import TaskConfig
from trainer_client.tasks.toy import ModelShape
from trainer_client.trainer.config import TrainConfig

DATASET = "pool"  # every run shares the task's distillation pool as one dataset

# The arm whose result the pre-registered primary criterion is about, and the baseline.
PRIMARY_ARM = "paced-paper"
REFERENCE_ARM = "uniform"
HARD_FILTER_ARM = "hard-filter"

# What each arm overrides on the shared base config. Unless an arm says otherwise, pass
# rates are estimated once before training (the task's K=8 estimate of the initial student,
# the same for every arm and seed) and never refreshed, as in the paper.
ARMS: dict[str, dict] = {
    "uniform": {"scheme": "uniform", "loss": "fkl"},
    "hard-filter": {"scheme": "hard-filter", "loss": "fkl"},
    # The paper's form: uniform batches, each problem's loss x w(p) (w / mean w over the
    # pool, a constant since p is fixed, so the step size is comparable to uniform's).
    "paced-paper": {"scheme": "paced-loss", "loss": "fkl"},
    # Problems drawn in proportion to w(p), loss weight 1 (equal in expectation).
    "paced-sampled": {"scheme": "paced", "loss": "fkl"},
    # Drawn in proportion to w(p), with the rollout queue's head re-estimated during training
    # (window "latest": a re-estimated problem's p is its newest round).
    "paced-reestimate": {"scheme": "paced", "loss": "fkl", "refresh_size": 256},
    # The paper's strongest loss: forward KL for the first half, reverse KL after; w(p) x L.
    "paced-two-stage": {"scheme": "paced-loss", "loss": "two-stage"},
    "akl": {"scheme": "uniform", "loss": "akl"},
}


@dataclass(frozen=True)
class ExperimentSize:
    name: str
    seeds: tuple[int, ...]
    base: TrainConfig
    task: TaskConfig | None  # None: the task's own full config


FULL = ExperimentSize(
    name="full",
    seeds=(0, 1, 2, 3),
    base=TrainConfig(
        dataset=DATASET,
        steps=250,  # batch 32: about one pass over the ~8,000-problem pool
        batch_size=32,
        lr=3e-4,
        warmup_steps=10,
        lr_schedule="cosine",
        min_lr_ratio=0.1,
        loss_reduction="sequence",
        k=8,
        estimator_window="latest",
        reuse_task_estimate=True,
        refresh_every=25,
        refresh_size=0,
        final_estimate=False,
        eval_every=25,
        checkpoint_every=250,
    ),
    task=None,  # the task's full config: 200 unseen eval problems per level
)

# A cut-down task that builds in about a minute on 2 cores: 1- and 2-digit addition, tiny
# models. It exists to exercise every code path quickly (CI), not to rank the arms.
QUICK_TASK = TaskConfig(
    seed=0,
    levels=2,
    train_per_level=600,
    pool_per_level=24,
    pool_levels=None,
    eval_per_level=16,
    dev_per_level=0,
    heldout_train=200,
    heldout_eval=20,
    reverse_digits=(3,),
    # 800 steps: with 250 the teacher was right on 2 of 48 pool problems, and verification
    # (rightly) dropped the rest. ~13 s to build on one thread.
    teacher=ModelShape(64, 192, 2),
    teacher_steps=800,
    teacher_lr=4e-3,
    teacher_batch=32,
    student=ModelShape(48, 128, 1),
    student_steps=200,
    student_batch=32,
    student_level_weights=(1.0, 0.3),
    warmup_band_level=None,
)

QUICK = ExperimentSize(
    name="quick",
    seeds=(0, 1),
    base=replace(
        FULL.base,
        steps=12,
        batch_size=8,
        warmup_steps=2,
        refresh_every=5,
        eval_every=6,
        checkpoint_every=12,
        max_new_tokens=24,
    ),
    task=QUICK_TASK,
)


def arm_config(size: ExperimentSize, arm: str, seed: int) -> TrainConfig:
    return replace(size.base, run=f"{arm}-s{seed}", seed=seed, **ARMS[arm])
