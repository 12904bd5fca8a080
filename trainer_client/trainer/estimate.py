"""Estimation: roll out K samples per problem with the student, grade them; post the outcomes.

This is where pass rates come from. Rollouts are seeded from (seed, step, chunk), so a
repeated estimate of the same problems with the same weights posts the same outcomes, and
the idempotency key (derived from the body) makes such a replay after a crash a no-op on
the service instead of a double count.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from trainer_client.client import PacedClient
from trainer_client.trainer.engines.base import RolloutEngine
from trainer_client.trainer.seeds import derive_seed


@dataclass
class EstimateResult:
    pass_rates: dict[str, float]
    rollouts: int  # completions generated (problems x K)
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # to post, one per problem


def outcomes_key(run: str, step: int, outcomes: list[dict[str, Any]]) -> str:
    """Idempotency key derived from the outcomes themselves: a replay is a no-op."""
    body = json.dumps(outcomes, sort_keys=True).encode()
    return f"{run}-s{step}-{hashlib.sha256(body).hexdigest()[:16]}"


def post_outcomes(
    client: PacedClient, run: str, step: int, outcomes: list[dict[str, Any]], key_suffix: str = ""
) -> None:
    """Post graded outcomes once: the key is the body's, plus e.g. the rank that rolled
    them out (each rank posts its own share), so a replay after a crash is not counted twice."""
    if outcomes:
        key = outcomes_key(run, step, outcomes) + key_suffix
        client.post_outcomes(run, outcomes, idempotency_key=key)


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
