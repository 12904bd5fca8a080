"""How the task's teacher and student are trained before distillation: which problems each
sees how often, the supervised run with its log lines, and the student's warm-up band.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from trainer_client.tasks.arithmetic.config import TaskConfig
from trainer_client.tasks.arithmetic.evaluation import evaluate
from trainer_client.tasks.arithmetic.problems import Problem, TaskSplits
from trainer_client.tasks.arithmetic.training import train_supervised
from trainer_client.tasks.toy import count_parameters

logger = logging.getLogger("trainer_client.tasks.arithmetic.build")


def teacher_weights(config: TaskConfig, splits: TaskSplits) -> list[float]:
    """Every level equally often (level 1 has few distinct problems), plus the held-out skill."""
    per_level = Counter(p.level for p in splits.train)
    add_share = (1.0 - config.teacher_heldout_share) / config.levels
    weights = [add_share / per_level[p.level] for p in splits.train]
    weights += [config.teacher_heldout_share / len(splits.heldout_train)] * len(
        splits.heldout_train
    )
    return weights


def student_weights(config: TaskConfig, splits: TaskSplits) -> list[float]:
    per_level = Counter(p.level for p in splits.train)
    level_weights = dict(enumerate(config.student_level_weights, start=1))
    total = sum(level_weights.values())
    add_share = 1.0 - config.student_heldout_share
    weights = [
        add_share * level_weights.get(p.level, 0.0) / total / per_level[p.level]
        for p in splits.train
    ]
    weights += [config.student_heldout_share / len(splits.heldout_train)] * len(
        splits.heldout_train
    )
    return weights


@contextmanager
def deterministic_torch(threads: int) -> Iterator[None]:
    """Fixed thread count and deterministic kernels for the build; restored afterwards."""
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1])


def train_model(
    name: str,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    problems: Sequence[Problem],
    weights: Sequence[float],
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    stop: Callable[[int], bool] | None = None,
) -> list[float]:
    logger.info(
        "training %s (%d parameters, at most %d steps)", name, count_parameters(model), steps
    )
    bar = tqdm(total=steps, desc=f"train {name}", unit="step", leave=False, disable=None)
    every = max(1, steps // 10)

    def on_step(step: int, loss: float) -> bool:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if step % every == 0 or step == steps - 1:
            logger.info("%s step %d/%d loss %.4f", name, step + 1, steps, loss)
        return stop is not None and stop(step + 1)

    try:
        return train_supervised(
            model, tokenizer, problems, steps, batch, lr, seed, weights, on_step
        )
    finally:
        bar.close()


def band_stop(
    config: TaskConfig,
    student: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    dev: Sequence[Problem],
    checks: list[dict[str, Any]],
) -> Callable[[int], bool] | None:
    """Stop the warm-up at the first check inside the band (see TaskConfig)."""
    level = config.warmup_band_level
    if level is None:
        return None
    problems = [p for p in dev if p.level == level]
    if not problems:
        raise ValueError(f"the dev split has no level-{level} problem for the warm-up band")
    low, high = config.warmup_band

    def stop(steps_done: int) -> bool:
        if steps_done < config.warmup_min_steps or steps_done % config.warmup_check_every:
            return False
        accuracy = evaluate(student, tokenizer, problems, config.eval_batch_size)["accuracy"]
        student.train()
        checks.append({"step": steps_done, "accuracy": accuracy})
        logger.info("warm-up step %d: dev level-%d accuracy %.3f", steps_done, level, accuracy)
        return low <= accuracy <= high

    return stop
