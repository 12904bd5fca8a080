"""Estimation: roll out K samples per problem with the student, grade them; post the outcomes.

This is where pass rates come from. Rollouts are seeded from (seed, step, chunk), so a
repeated estimate of the same problems with the same weights posts the same outcomes, and
the idempotency key (outcomes.outcome_key, derived from the body) makes such a replay after a
crash a no-op on the service instead of a double count. `Estimator` is what the recipes
use: the rollouts split over the ranks, each rank posting its own share, every rank
returning every pass rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from trainer_client.client import PacedClient
from trainer_client.trainer.accounting import Counters
from trainer_client.trainer.engines.base import RolloutEngine
from trainer_client.trainer.outcomes import post_outcomes
from trainer_client.trainer.ranks import Ranks
from trainer_client.trainer.seeds import derive_seed

# Outcomes per post when a whole pool's estimate is posted at once (the task's own).
POST_CHUNK = 5000


@dataclass
class EstimateResult:
    pass_rates: dict[str, float]
    rollouts: int  # completions generated (problems x K)
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # to post, one per problem


def estimate(
    *,
    engine: RolloutEngine,
    verifier: Any,
    items: Sequence[Any],
    k: int,
    seed: int,
    step: int,
    temperature: float,
    budget: Callable[[str], int],
    rows_per_call: int,
    rank: int = 0,
    world: int = 1,
) -> EstimateResult:
    """Roll out `items` (anything with problem_id, prompt, answer) and grade them.

    `budget(problem_id)` is the max_new_tokens for that problem; items are grouped by it so
    short problems are not generated to the longest one's length. Each group of rows is
    seeded by its index, and with `world` ranks rank r rolls out groups r, r + world, ...:
    every problem gets the very completions one process would have sampled.
    """
    ordered = sorted(items, key=lambda item: budget(item.problem_id))
    per_call = max(1, rows_per_call // k)
    pass_rates: dict[str, float] = {}
    outcomes: list[dict[str, Any]] = []
    progress = tqdm(
        total=len(ordered),
        desc=f"rollouts@{step}",
        unit="problem",
        leave=False,
        disable=rank > 0 or None,
    )
    for chunk_index, start in enumerate(range(0, len(ordered), per_call)):
        if chunk_index % world != rank:
            continue
        chunk = ordered[start : start + per_call]
        groups = engine.generate(
            [item.prompt for item in chunk],
            k,
            seed=derive_seed(seed, step, "rollout", chunk_index),
            max_new_tokens=max(budget(item.problem_id) for item in chunk),
            temperature=temperature,
        )
        texts = [c.text for group in groups for c in group]
        answers = [item.answer or "" for item in chunk for _ in range(k)]
        grades = verifier.grade(texts, answers)
        for i, item in enumerate(chunk):
            successes = sum(grades[i * k : (i + 1) * k])
            pass_rates[item.problem_id] = successes / k
            outcomes.append(
                {"problem_id": item.problem_id, "attempts": k, "successes": successes, "step": step}
            )
        progress.update(len(chunk))
    progress.close()
    return EstimateResult(pass_rates=pass_rates, rollouts=len(outcomes) * k, outcomes=outcomes)


class Estimator:
    """K rollouts per problem with the current student, graded, posted at the step.

    `weights()` gives what the engine loads before each estimate (the student's current
    weights; None: the engine samples from the live model itself). `budget(problem_id)` is
    a problem's max_new_tokens."""

    def __init__(
        self,
        client: PacedClient,
        run: str,
        engine: RolloutEngine,
        verifier: Any,
        *,
        k: int,
        seed: int,
        temperature: float,
        budget: Callable[[str], int],
        rows_per_call: int,
        ranks: Ranks | None = None,
        counters: Counters | None = None,
        weights: Callable[[], Any] | None = None,
    ) -> None:
        self.client, self.run, self.engine, self.verifier = client, run, engine, verifier
        self.k, self.seed, self.temperature = k, seed, temperature
        self.budget, self.rows_per_call = budget, rows_per_call
        self.ranks, self.counters = ranks or Ranks(), counters or Counters()
        self.weights = weights

    def __call__(self, items: Sequence[Any], step: int) -> EstimateResult:
        """Every rank rolls out its share of `items` and posts it; every rank returns all
        pass rates and the rollouts of all ranks."""
        if not items:
            return EstimateResult({}, 0)
        with self.counters.timing("estimate_s"):
            if self.weights is not None:
                self.engine.load_weights(self.weights())
            mine = estimate(
                engine=self.engine,
                verifier=self.verifier,
                items=items,
                k=self.k,
                seed=self.seed,
                step=step,
                temperature=self.temperature,
                budget=self.budget,
                rows_per_call=self.rows_per_call,
                rank=self.ranks.rank,
                world=self.ranks.world,
            )
            self.post(step, mine.outcomes)
            # Also a barrier: every rank's outcomes are in before rank 0 draws again.
            shares = self.ranks.gather((mine.pass_rates, mine.rollouts))
        rollouts = sum(count for _, count in shares)
        self.counters.rollouts += rollouts
        return EstimateResult({pid: p for rates, _ in shares for pid, p in rates.items()}, rollouts)

    def post(self, step: int, outcomes: list[dict[str, Any]]) -> None:
        """Each rank posts the outcomes it rolled out, under a key of its own."""
        post_outcomes(self.client, self.run, outcomes, step=step, rank=self.ranks.rank)

    def post_rates(self, pass_rates: dict[str, float], step: int = 0) -> None:
        """Post pass rates measured elsewhere (e.g. when the task was built, with this same
        student) as K attempts each, instead of rolling out again."""
        outcomes = [
            {"problem_id": pid, "attempts": self.k, "successes": round(rate * self.k), "step": step}
            for pid, rate in pass_rates.items()
        ]
        for start in range(0, len(outcomes), POST_CHUNK):
            self.post(step, outcomes[start : start + POST_CHUNK])
