"""The results table (markdown), in the paper's layout plus forgetting and compute columns."""

from __future__ import annotations

import math
from typing import Any

from experiments.stats import Interval


def _pct(interval: Interval) -> str:
    if math.isnan(interval.half_width):
        return f"{100 * interval.mean:.1f}"
    return f"{100 * interval.mean:.1f} ± {100 * interval.half_width:.1f}"


def _count(interval: Interval) -> str:
    return f"{interval.mean:,.0f}"


def _steps(row: dict[str, Any], n_seeds: int) -> str:
    if row["steps_to_target"] is None:
        return f"not reached ({row['seeds_reaching_target']}/{n_seeds} seeds)"
    return f"{row['steps_to_target']} ({row['seeds_reaching_target']}/{n_seeds} seeds)"


def results_table(rows: dict[str, dict], before: dict[str, Any], arm_order: list[str]) -> str:
    """Markdown table: accuracy per level and overall, forgetting, steps, compute."""
    levels = sorted(next(iter(rows.values()))["per_level"], key=int)
    head = (
        ["arm"]
        + [f"L{level} %" for level in levels]
        + ["overall %", "held-out skill %", "forgetting (pts)", "steps to uniform's final"]
        + ["teacher fwd", "student bwd tokens", "estimation rollouts"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    start = (
        ["student before"]
        + [f"{100 * before['per_level'][level]:.1f}" for level in levels]
        + [f"{100 * before['accuracy']:.1f}", f"{100 * before['heldout']:.1f}", "-", "-"]
        + ["-", "-", "-"]
    )
    lines.append("| " + " | ".join(start) + " |")
    for arm in arm_order:
        if arm not in rows:
            continue
        row = rows[arm]
        n = len(row["seeds"])
        forgetting = row["forgetting"]
        cells = (
            [arm]
            + [_pct(row["per_level"][level]) for level in levels]
            + [_pct(row["overall"]), _pct(row["heldout_after"])]
            + [_pct(forgetting), _steps(row, n)]
            + [_count(row["teacher_forwards"]), _count(row["student_backward_tokens"])]
            + [_count(row["estimation_rollouts"])]
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
