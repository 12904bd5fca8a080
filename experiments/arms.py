"""The compared arms and the two experiment sizes (full and --quick).

Every arm shares one TrainConfig base: the same optimiser steps, batch size, learning rate,
K, estimation schedule (initial full-pool estimate, then `refresh_size` problems re-rolled
every `refresh_every` steps) and evaluation points. An arm changes only what the paper
compares: how problems are chosen and weighted, the estimator, and the loss. Nothing here
is tuned per arm.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from trainer_client.task.config import TaskConfig
from trainer_client.task.models import ModelShape
from trainer_client.trainer.config import TrainConfig

DATASET = "pool"  # every run shares the task's distillation pool as one dataset

# What each arm overrides on the shared base config.
ARMS: dict[str, dict] = {
    "uniform": {"scheme": "uniform", "loss": "fkl"},
    "hard-filter": {"scheme": "hard-filter", "loss": "fkl"},
    "paced": {"scheme": "paced", "loss": "fkl"},
    "paced-loss": {"scheme": "paced-loss", "loss": "fkl"},
    # Posterior Beta(1, 1) estimate, counts halved every 20 steps (the demo's setting), so
    # p follows the student as the periodic re-estimation refreshes it.
    "paced-posterior": {
        "scheme": "paced",
        "loss": "fkl",
        "estimator": "posterior",
        "half_life_steps": 20.0,
    },
    # Forward KL for the first half of the steps, reverse KL after (the loss's default switch).
    "paced-two-stage": {"scheme": "paced", "loss": "two-stage"},
    "akl": {"scheme": "uniform", "loss": "akl"},
}


@dataclass(frozen=True)
class ExperimentSize:
    name: str
    seeds: tuple[int, ...]
    base: TrainConfig
    task: TaskConfig | None  # None: the task's own full config
    extra_eval_per_level: int  # fresh held-out problems added per level >= 2 (less noise)
    extra_heldout: int  # fresh held-out-skill problems added (forgetting, less noise)


FULL = ExperimentSize(
    name="full",
    seeds=(0, 1, 2),
    base=TrainConfig(
        dataset=DATASET,
        steps=300,
        batch_size=32,
        lr=3e-4,
        warmup_steps=10,
        k=8,
        refresh_every=15,
        refresh_size=50,
        eval_every=25,
        checkpoint_every=300,
    ),
    task=None,
    extra_eval_per_level=60,
    extra_heldout=90,
)

# A cut-down task that builds in about a minute on 2 cores: 1- and 2-digit addition, tiny
# models. It exists to exercise every code path quickly (CI), not to rank the arms.
QUICK_TASK = TaskConfig(
    seed=0,
    levels=2,
    train_per_level=600,
    pool_per_level=24,
    eval_per_level=16,
    heldout_train=200,
    heldout_eval=20,
    reverse_digits=(3,),
    teacher=ModelShape(48, 128, 2),
    teacher_steps=250,
    teacher_batch=32,
    student=ModelShape(32, 96, 1),
    student_steps=80,
    student_batch=32,
    student_level_weights=(1.0, 0.3),
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
        refresh_size=12,
        eval_every=6,
        checkpoint_every=12,
        max_new_tokens=24,
    ),
    task=QUICK_TASK,
    extra_eval_per_level=0,
    extra_heldout=0,
)


def arm_config(size: ExperimentSize, arm: str, seed: int) -> TrainConfig:
    return replace(size.base, run=f"{arm}-s{seed}", seed=seed, **ARMS[arm])
