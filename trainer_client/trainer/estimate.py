"""Estimation: roll out K samples per problem with the student, grade them, post outcomes.

This is where pass rates come from. Rollouts are seeded from (seed, step, chunk), so a
repeated estimate of the same problems with the same weights posts the same outcomes, and
the idempotency key (derived from the body) makes such a replay after a crash a no-op on
the service instead of a double count.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from trainer_client.engines.base import RolloutEngine
from trainer_client.trainer.metrics import ClientTimer
from trainer_client.trainer.seeds import derive_seed


@dataclass
class EstimateResult:
    pass_rates: dict[str, float]
    rollouts: int  # completions generated (problems x K)


def outcomes_key(run: str, step: int, outcomes: list[dict[str, Any]]) -> str:
    """Idempotency key derived from the outcomes themselves: a replay is a no-op."""
    body = json.dumps(outcomes, sort_keys=True).encode()
    return f"{run}-s{step}-{hashlib.sha256(body).hexdigest()[:16]}"


def estimate(
    *,
    client: Any,
    timer: ClientTimer,
    run: str,
    engine: RolloutEngine,
    verifier: Any,
    items: Sequence[Any],
    k: int,
    seed: int,
    step: int,
    temperature: float,
    budget: Callable[[str], int],
    rows_per_call: int,
    post: bool = True,
) -> EstimateResult:
    """Roll out `items` (anything with problem_id, prompt, answer) and post their outcomes.

    `budget(problem_id)` is the max_new_tokens for that problem; items are grouped by it so
    short problems are not generated to the longest one's length.
    """
    ordered = sorted(items, key=lambda item: budget(item.problem_id))
    per_call = max(1, rows_per_call // k)
    pass_rates: dict[str, float] = {}
    outcomes: list[dict[str, Any]] = []
    progress = tqdm(
        total=len(ordered), desc=f"rollouts@{step}", unit="problem", leave=False, disable=None
    )
    for chunk_index, start in enumerate(range(0, len(ordered), per_call)):
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
    if post and outcomes:
        timer.call(
            client.post_outcomes,
            run,
            outcomes,
            idempotency_key=outcomes_key(run, step, outcomes),
        )
    return EstimateResult(pass_rates=pass_rates, rollouts=len(outcomes) * k)
