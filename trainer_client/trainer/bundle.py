"""TaskBundle: everything the training loop needs to know about a task, and nothing else."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the bundle itself needs no torch; its models are torch modules
    import torch


@dataclass
class TaskBundle:
    """What the loop needs from a task. `pool` items have .id, .prompt, .answer."""

    teacher: torch.nn.Module
    student: torch.nn.Module
    tokenizer: Any
    pool: Sequence[Any]
    # student -> {"eval": report, "heldout": report}; reports as task.evaluate returns them.
    evaluate: Callable[[torch.nn.Module], dict[str, Any]] | None = None
    teacher_key: str | None = None  # cache key of the teacher; default: hash of its weights
    # The task's own K-rollout pass rate per pool problem for the initial student (what
    # TrainConfig.reuse_task_estimate posts instead of rolling out again).
    initial_pass_rates: dict[str, float] | None = None
    # Teacher responses (token ids) per pool problem, when the task already made them;
    # otherwise the loop generates them greedily (cached). Either way they are verified.
    references: dict[str, list[int]] | None = None
