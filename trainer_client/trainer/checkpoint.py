"""Checkpoints: student weights, optimiser, every RNG stream, the step and the loop's counters.

A resumed run must neither replay nor skip a step. Batches are seeded by (seed, step), so
restoring `next_step` is what makes a resumed run draw the same batches; the RNG states are
saved as well so anything drawing from the global generators continues identically.
Writes go to a temporary file renamed into place, so a crash mid-save never leaves a torn
checkpoint.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from trainer_client.trainer.accounting import Counters
    from trainer_client.trainer.parallel import Student
    from trainer_client.trainer.ranks import Ranks

CHECKPOINT_NAME = "checkpoint.pt"


def checkpoint_path(workdir: Path) -> Path:
    return Path(workdir) / CHECKPOINT_NAME


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(
    workdir: Path,
    *,
    model_state: dict[str, Any],
    optimizer_state: dict[str, Any],
    next_step: int,
    state: dict[str, Any],
) -> Path:
    """Atomically write the checkpoint; `next_step` is the first step a resume will run."""
    path = checkpoint_path(workdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "next_step": next_step,
        "model": model_state,
        "optimizer": optimizer_state,
        "rng": rng_states(),
        "state": state,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Checkpoint:
    next_step: int  # the first step a resumed run runs
    model_state: dict[str, Any]
    optimizer_state: dict[str, Any]
    state: dict[str, Any]  # the loop's own: counters and the "before" measurements


def load_checkpoint(workdir: Path) -> Checkpoint:
    """Read the checkpoint and restore the RNG streams; the caller loads the states."""
    # weights_only=False: the payload holds RNG state tuples and plain dicts we wrote.
    payload = torch.load(checkpoint_path(workdir), map_location="cpu", weights_only=False)
    restore_rng_states(payload["rng"])
    return Checkpoint(
        int(payload["next_step"]), payload["model"], payload["optimizer"], dict(payload["state"])
    )


def save_run(
    workdir: Path,
    student: Student,
    optimizer: torch.optim.Optimizer,
    *,
    ranks: Ranks,
    next_step: int,
    state: dict[str, Any],
    counters: Counters,
) -> None:
    """A run's checkpoint: every rank gives its part (FSDP gathers), rank 0 writes it."""
    model_state, optimizer_state = student.state_dicts(optimizer)
    if ranks.is_main:
        save_checkpoint(
            workdir,
            model_state=model_state,
            optimizer_state=optimizer_state,
            next_step=next_step,
            state={**state, "counters": counters.to_dict()},
        )


def restore_run(
    workdir: Path, student: Student, optimizer: torch.optim.Optimizer, counters: Counters
) -> tuple[int, dict[str, Any]]:
    """Every rank loads the checkpoint rank 0 wrote, counters included; returns (next step,
    the loop's state)."""
    saved = load_checkpoint(workdir)
    student.load_state_dicts(optimizer, saved.model_state, saved.optimizer_state)
    state = dict(saved.state)
    counters.load(state.pop("counters"))
    return saved.next_step, state
