"""The one training loop every recipe runs on: it keeps the cadence and nothing else.

    for step in steps:
        re-estimate (when a refresh is due) -> batch i from the feed -> recipe.step(i, batch)
        -> the run's difficulty after the draw -> record -> evaluate / checkpoint when due

What a step does (the loss, the backward pass, the optimiser) is the recipe's (recipes/
distill.py, recipes/self_distill.py); where batches come from is the feed's (feed.py,
draws.py); what is kept of a step is the caller's `on_step`. As in nanoGPT's train.py and
torchtune's recipes, the loop itself reads top to bottom on one screen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tqdm.auto import tqdm

from trainer_client.trainer.accounting import Lap, StepResult
from trainer_client.trainer.draws import DrawnBatch
from trainer_client.trainer.feed import BatchFeed

OnStep = Callable[[StepResult, "dict[str, Any] | None", Lap], None]
AtBoundary = Callable[[int], object]  # called with the next step to run


class Recipe(Protocol):
    def step(self, step: int, drawn: DrawnBatch) -> StepResult:
        """Train on one drawn batch (every rank; the batch is the same on all of them)."""
        ...


@dataclass(frozen=True)
class Cadence:
    """When evaluations and checkpoints fall: after every N-th step, before the last one
    (what follows the last step is the caller's). 0: never."""

    steps: int  # the run's length: its last step is steps - 1
    eval_every: int = 0
    checkpoint_every: int = 0

    def evaluates_after(self, step: int) -> bool:
        return _due(step, self.eval_every, self.steps)

    def checkpoints_after(self, step: int) -> bool:
        return _due(step, self.checkpoint_every, self.steps)


def _due(step: int, every: int, steps: int) -> bool:
    return every > 0 and (step + 1) % every == 0 and step + 1 < steps


def train_loop(
    recipe: Recipe,
    feed: BatchFeed,
    steps: range,
    *,
    cadence: Cadence | None = None,
    on_step: OnStep | None = None,
    evaluate: AtBoundary | None = None,
    checkpoint: AtBoundary | None = None,
    label: str = "train",
    disable_bar: bool | None = None,
) -> None:
    """Run `steps` of `recipe` on batches from `feed`. disable_bar None: a bar on a terminal."""
    cadence = cadence or Cadence(steps.stop)
    bar = tqdm(
        steps, desc=label, unit="step", initial=steps.start, total=steps.stop, disable=disable_bar
    )
    for step in bar:
        with feed.clock.lap() as lap:
            refreshed = feed.refresh(step) if feed.refreshes_at(step) else 0
            result = recipe.step(step, feed.batch(step))
            result = dataclasses.replace(result, refreshed=refreshed)
            difficulty = feed.difficulty_after_step()
        if on_step is not None:
            on_step(result, difficulty, lap)
        bar.set_postfix(**_postfix(result, difficulty))
        if evaluate is not None and cadence.evaluates_after(step):
            evaluate(step + 1)
        if checkpoint is not None and cadence.checkpoints_after(step):
            checkpoint(step + 1)
    bar.close()


def _postfix(result: StepResult, difficulty: dict[str, Any] | None) -> dict[str, str]:
    shown = {"loss": f"{result.loss:.3f}"}
    if difficulty is not None:
        zones = difficulty["zones"]
        shown["zones"] = "/".join(str(zones[z]) for z in ("intractable", "frontier", "mastered"))
    return shown
