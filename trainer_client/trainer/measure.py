"""What a run measures before and after training (rank 0's view, on every rank).

- the task's own evaluation of the student (greedy, so no RNG stream is consumed);
- the pool's zones from a full K-rollout estimate (or the task's estimate at step 0);
- the service's view of the run, and how closely it matches the fresh estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer_client.client import PacedClient
from trainer_client.trainer.estimate import Estimator
from trainer_client.trainer.feed import read_difficulty
from trainer_client.trainer.metrics import MetricsLog, zone_counts
from trainer_client.trainer.parallel import Student
from trainer_client.trainer.ranks import Ranks

Evaluate = Callable[[torch.nn.Module], dict[str, Any]]


@dataclass(frozen=True)
class _PoolItem:
    problem_id: str
    prompt: str
    answer: str | None


class Measurements:
    """Before/after measurements of one run; `evaluate` is the task's (None: no evaluation)."""

    def __init__(
        self,
        client: PacedClient,
        run: str,
        student: Student,
        estimator: Estimator,
        *,
        ranks: Ranks,
        workdir: Path,
        evaluate: Evaluate | None,
    ) -> None:
        self.client, self.run, self.student, self.estimator = client, run, student, estimator
        self.ranks, self.workdir, self.task_evaluate = ranks, workdir, evaluate

    def before(
        self, pool: Sequence[Any], task_pass_rates: dict[str, float] | None
    ) -> dict[str, Any]:
        """Evaluation, zones and the service's view before training (the loop's state).
        With `task_pass_rates` (the task's own step-0 estimate with this same student) those
        are posted instead of rolling out again (rank 0)."""
        state: dict[str, Any] = {"eval_before": self.evaluate()}
        if task_pass_rates is not None:
            rates = {p.id: task_pass_rates[p.id] for p in pool if p.id in task_pass_rates}
            if self.ranks.is_main:
                self.estimator.post_rates(rates)
            else:
                rates = {}
        else:
            rates = self.full_estimate(pool, step=0)
        state["zones_before"] = zone_counts(list(rates.values()))
        state["service_before"] = self.difficulty() if self.ranks.is_main else None
        return state

    def after(
        self, state: dict[str, Any], pool: Sequence[Any], *, final_estimate: bool, step: int
    ) -> tuple[dict[str, int] | None, dict[str, Any] | None]:
        """(zones after, evaluation after); the service agreement goes into `state`."""
        zones_after = None
        if final_estimate:
            rates = self.full_estimate(pool, step=step)
            zones_after = zone_counts(list(rates.values()))
            if self.ranks.is_main:
                state["service_agreement"] = self.service_agreement(rates)
        return zones_after, self.evaluate()

    def full_estimate(self, pool: Sequence[Any], step: int) -> dict[str, float]:
        """Every pool problem, K rollouts each (zones before/after are measured this way)."""
        items = [_PoolItem(p.id, p.prompt, p.answer) for p in pool]
        return self.estimator(items, step).pass_rates

    def difficulty(self) -> dict[str, Any]:
        return read_difficulty(self.client, self.run)

    def service_agreement(self, fresh: dict[str, float]) -> dict[str, Any]:
        """How closely the service's pass rates match a fresh estimate just posted: equal
        under window "latest"; under "all" the service also averages older students in."""
        served = {item.problem_id: item.pass_rate for item in self.client.iter_weights(self.run)}
        gaps = [abs(p - rate) for pid, rate in fresh.items() if (p := served.get(pid)) is not None]
        return {
            "problems": len(fresh),
            "equal": sum(gap < 1e-9 for gap in gaps),
            "max_abs_diff": max(gaps, default=0.0),
            "mean_abs_diff": sum(gaps) / len(gaps) if gaps else 0.0,
        }

    def evaluate(self) -> dict[str, Any] | None:
        """The task's evaluation of the student, on rank 0 (None elsewhere)."""
        if self.task_evaluate is None:
            return None
        student = self.student.full_module()  # gathering FSDP shards takes every rank
        if not self.ranks.is_main:
            return None
        student.eval()
        report = self.task_evaluate(student)
        student.train()
        return report

    def record_eval(self, step: int) -> None:
        """Evaluate at a step boundary into evals.jsonl (greedy, so no RNG is consumed)."""
        report = self.evaluate()
        if report is not None:
            MetricsLog(self.workdir / "evals.jsonl").write({"step": step, **report})
