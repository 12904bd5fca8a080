"""A recipe run as a session on the service: set up, measure before, the loop with its
records, evaluations and checkpoints, measure after, the summary.

The session is what resumes: a checkpoint holds the student, its optimiser, every RNG
stream, the step to run next and the counters, so a resumed session neither replays nor
skips a step (batches are seeded by (seed, step)).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from trainer_client.client import PacedClient
from trainer_client.heap import startup_heap_frozen
from trainer_client.trainer.accounting import Counters, Lap, StepResult, count_step, step_record
from trainer_client.trainer.checkpoint import checkpoint_path, restore_run, save_run
from trainer_client.trainer.config import TrainConfig
from trainer_client.trainer.feed import BatchFeed
from trainer_client.trainer.loop import Cadence, train_loop
from trainer_client.trainer.measure import Measurements
from trainer_client.trainer.metrics import MetricsLog
from trainer_client.trainer.parallel import Student
from trainer_client.trainer.report import build_summary


class SessionRecipe(Protocol):
    """What a session needs of its recipe, beyond `step`."""

    student: Student
    optimizer: torch.optim.Optimizer
    pool: list[Any]

    def step(self, step: int, drawn: Any) -> StepResult: ...


def ensure_run(client: PacedClient, config: TrainConfig, pool: Sequence[Any]) -> None:
    """Get or create the dataset (uploading the pool unless it is there) and the run (an
    existing run with other settings is a Conflict naming them)."""
    dataset = config.dataset_name
    found = client.create_dataset(dataset, "PACED training pool", exist_ok=True)
    if found.problem_count != len(pool):
        problems = [{"id": p.id, "prompt": p.prompt, "answer": p.answer} for p in pool]
        client.upsert_problems(dataset, problems)
    estimator: dict[str, Any] = {"kind": config.estimator, "window": config.estimator_window}
    if config.half_life_steps is not None:
        estimator["half_life_steps"] = config.half_life_steps
    kernel = {"alpha": config.alpha, "beta": config.beta}
    client.create_run(config.run, dataset, kernel=kernel, estimator=estimator, exist_ok=True)


class Session:
    """One run of `recipe` on batches from `feed`, measured by `measure`, in `workdir`."""

    def __init__(
        self,
        config: TrainConfig,
        recipe: SessionRecipe,
        feed: BatchFeed,
        measure: Measurements,
        *,
        workdir: Path,
        counters: Counters,
    ) -> None:
        self.config, self.recipe, self.feed, self.measure = config, recipe, feed, measure
        self.workdir, self.counters, self.ranks = workdir, counters, feed.ranks
        self.metrics = MetricsLog(workdir / "metrics.jsonl")
        self.state: dict[str, Any] = {}  # the "before" measurements, kept in checkpoints
        self.wall_mark = 0.0  # wall time up to here is in counters.wall_s

    def run(
        self,
        *,
        resume: bool,
        progress: bool | None,
        started: float,
        task_pass_rates: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """The whole run on this rank; returns the summary (rank 0's, on every rank)."""
        config, recipe = self.config, self.recipe
        self.wall_mark = started  # setup (models, references) counts too
        if resume and checkpoint_path(self.workdir).exists():
            args = (self.workdir, recipe.student, recipe.optimizer, self.counters)
            start_step, self.state = restore_run(*args)
        else:
            start_step, self.state = 0, self.measure.before(recipe.pool, task_pass_rates)
        # The models and references stay for the whole loop: full collections skip them
        # (trainer_client/heap.py: each cost ~120 ms with torch loaded).
        with startup_heap_frozen():
            train_loop(
                recipe,
                self.feed,
                range(start_step, config.steps),
                cadence=Cadence(config.steps, config.eval_every, config.checkpoint_every),
                on_step=self.record,
                evaluate=self.measure.record_eval,
                checkpoint=self.save,
                # None: only on a terminal; never on ranks other than 0
                disable_bar=not self.ranks.is_main or (None if progress is None else not progress),
            )
        self.save(config.steps)
        return self.finish()

    def record(self, result: StepResult, difficulty: dict[str, Any] | None, lap: Lap) -> None:
        count_step(self.counters, result, lap)
        if difficulty is not None:
            record = step_record(result, self.config.scheme, difficulty, self.counters, lap)
            self.metrics.write(record)

    def save(self, next_step: int) -> None:
        """Checkpoint (rank 0 writes it); the session's wall time so far goes in with it."""
        now = time.perf_counter()
        self.counters.wall_s += now - self.wall_mark
        save_run(
            self.workdir,
            self.recipe.student,
            self.recipe.optimizer,
            ranks=self.ranks,
            next_step=next_step,
            state=self.state,
            counters=self.counters,
        )
        self.wall_mark = now

    def finish(self) -> dict[str, Any]:
        """Measure after training; the summary (written to summary.json by rank 0)."""
        config, pool = self.config, self.recipe.pool
        zones_after, eval_after = self.measure.after(
            self.state, pool, final_estimate=config.final_estimate, step=config.steps
        )
        self.counters.wall_s += time.perf_counter() - self.wall_mark
        summary = None
        if self.ranks.is_main:
            summary = build_summary(
                config,
                self.counters,
                self.feed.clock,
                pool_size=len(pool),
                state=self.state,
                zones_after=zones_after,
                eval_after=eval_after,
                service_after=self.measure.difficulty(),
            )
            path = self.workdir / "summary.json"
            path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        return self.ranks.broadcast(summary)  # type: ignore[arg-type]
