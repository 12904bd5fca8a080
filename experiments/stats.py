"""Aggregation over seeds: means with 95% t-intervals, mean curves, steps to a target."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    mean: float
    half_width: float  # NaN with fewer than 2 seeds (no interval can be given)
    n: int


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean ± Student-t half-width over seeds."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Interval(math.nan, math.nan, 0)
    if data.size < 2:
        return Interval(float(data.mean()), math.nan, 1)
    sem = data.std(ddof=1) / math.sqrt(data.size)
    quantile = stats.t.ppf(0.5 + confidence / 2, data.size - 1)
    return Interval(float(data.mean()), float(quantile * sem), int(data.size))


def mean_curve(records: Sequence[dict[str, Any]], key: str = "accuracy") -> list[tuple[int, float]]:
    """(step, mean over seeds) at every evaluation step all seeds share."""
    per_step: dict[int, list[float]] = {}
    for record in records:
        for point in record["curve"]:
            per_step.setdefault(point["step"], []).append(point[key])
    return [
        (step, float(np.mean(values)))
        for step, values in sorted(per_step.items())
        if len(values) == len(records)
    ]


def first_step_reaching(curve: Sequence[tuple[int, float]], target: float) -> int | None:
    """First evaluated step after training began whose value is at least `target` (None:
    never reached). Step 0 is skipped: reaching a target before any training is no speed."""
    for step, value in curve:
        if step > 0 and value >= target - 1e-12:
            return step
    return None


def arm_rows(records: Sequence[dict[str, Any]], reference_arm: str) -> dict[str, dict]:
    """Per arm: every table column as an Interval (or a step count), from per-seed records."""
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_arm.setdefault(record["arm"], []).append(record)
    reference = by_arm.get(reference_arm, [])
    target = float(np.mean([r["after"]["accuracy"] for r in reference])) if reference else None
    rows: dict[str, dict] = {}
    for arm, runs in by_arm.items():
        levels = sorted({level for r in runs for level in r["after"]["per_level"]}, key=int)
        curve = mean_curve(runs)
        per_seed_reach = [
            first_step_reaching(
                [(p["step"], p["accuracy"]) for p in r["curve"]],
                math.inf if target is None else target,
            )
            for r in runs
        ]
        rows[arm] = {
            "seeds": sorted(r["seed"] for r in runs),
            "per_level": {
                level: t_interval([r["after"]["per_level"][level] for r in runs])
                for level in levels
            },
            "overall": t_interval([r["after"]["accuracy"] for r in runs]),
            "heldout_after": t_interval([r["after"]["heldout"] for r in runs]),
            "forgetting": t_interval(
                [r["before"]["heldout"] - r["after"]["heldout"] for r in runs]
            ),
            "reach_target": target,
            "steps_to_target": first_step_reaching(curve, target) if target is not None else None,
            "seeds_reaching_target": sum(s is not None for s in per_seed_reach),
            "teacher_forwards": t_interval([r["compute"]["teacher_forwards"] for r in runs]),
            "student_backward_tokens": t_interval(
                [r["compute"]["student_backward_tokens"] for r in runs]
            ),
            "estimation_rollouts": t_interval([r["compute"]["estimation_rollouts"] for r in runs]),
            "on_policy_samples": t_interval([r["compute"]["on_policy_samples"] for r in runs]),
            "fallback_batches": sum(r["compute"]["fallback_batches"] for r in runs),
            "run_wall_s": t_interval([r["timings"]["run_wall_s"] for r in runs]),
        }
    return rows
